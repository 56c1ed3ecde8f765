/*
 * up_internal.h: what stays inside up/.  The compact codec
 * (up_cframe.c) carries several payloads of the full form unchanged
 * (the ANNOUNCE, OFFER and XOR payloads of docs/up-protocol.md §4), so
 * it reads, writes and checks them with the full codec's own functions
 * rather than a copy of them: one layout, one set of rules.
 */
#ifndef UP_INTERNAL_H
#define UP_INTERNAL_H

#include "up.h"

/* up_frame.c: payload readers, writers and field rules of §4 and §9. */
void		 up__rd_announce(struct up_rd *, struct up_announce *);
void		 up__wr_announce(struct up_wr *, const struct up_announce *);
int		 up__check_announce(const struct up_announce *);
int		 up__check_offer(const struct up_offer *);
int		 up__check_str(const char *, size_t max, bool need);
void		 up__rd_xor(struct up_rd *, struct up_xor *);
void		 up__wr_xor(struct up_wr *, const struct up_xor *);
int		 up__check_xor(const struct up_xor *);
void		 up__rd_status_body(struct up_rd *, struct up_status_body *);
void		 up__wr_status_body(struct up_wr *,
		    const struct up_status_body *);

/*
 * up_cframe.c: varints of §11.2 (unsigned LEB128, at most 32 bits, the
 * shortest encoding only).  up__rd_varint sets UP_ESHORT past the end
 * and UP_ERANGE for an overlong or too large one.
 */
uint32_t	 up__rd_varint(struct up_rd *);
void		 up__wr_varint(struct up_wr *, uint32_t);
size_t		 up__varint_len(uint32_t);

/* up_cframe.c: up_encode() of a compact message. */
int		 up__cencode(const struct up_msg *, uint8_t *, size_t);

/* up_status.c: a compact status body (§11.7), form by form. */
void		 up__rd_status_list(struct up_rd *, uint8_t form,
		    struct up_status_body *);
void		 up__wr_status_list(struct up_wr *,
		    const struct up_status_body *);
int		 up__check_status_list(const struct up_status_body *);

#endif /* UP_INTERNAL_H */
