/*
 * up_config.h: compile-time options of the UP library.
 *
 * Every option is "#ifndef X / #define X default", so a port can override
 * any of them: with -DUP_NODE_ERASE_STEP=4096 on the command line, or in
 * a port header named by -DUP_CONFIG_FILE='"my_up_config.h"' (included
 * first, as mbed TLS does with MBEDTLS_CONFIG_FILE), or with -include.
 * The whole library and everything that includes up.h must be built with
 * the same values: they size the structs of up.h.  Sizes here bound every
 * fixed array in up.h: nothing in up/ allocates.
 *
 * The wire limits (UP_NAME_MAX ... UP_SIG_MAX) are the interoperable
 * values of docs/up-protocol.md §2.4; the UP_NODE_* options tune the node
 * engine (docs/up-node-engine.md, "Port configuration").
 */
#ifndef UP_CONFIG_H
#define UP_CONFIG_H

#ifdef UP_CONFIG_FILE
#include UP_CONFIG_FILE
#endif

/* Longest component or hardware-model name, in bytes, without the NUL. */
#ifndef UP_NAME_MAX
#define UP_NAME_MAX		31
#endif

/* Longest version string, in bytes, without the NUL. */
#ifndef UP_VER_MAX
#define UP_VER_MAX		31
#endif

/* Components a node may report in one ANNOUNCE. */
#ifndef UP_MAX_COMPONENTS
#define UP_MAX_COMPONENTS	8
#endif

/* Dependencies one OFFER may carry. */
#ifndef UP_MAX_DEPS
#define UP_MAX_DEPS		4
#endif

/* Hardware models one OFFER may name as compatible. */
#ifndef UP_MAX_HW
#define UP_MAX_HW		4
#endif

/* Largest frame the library encodes or decodes (header + payload + CRC). */
#ifndef UP_FRAME_MAX
#define UP_FRAME_MAX		1472
#endif

/* Blocks one XOR frame may combine (docs/up-protocol.md §4.15). */
#ifndef UP_XOR_MAX
#define UP_XOR_MAX		48
#endif

/* Largest signature carried in an OFFER (Ed25519 = 64). */
#ifndef UP_SIG_MAX
#define UP_SIG_MAX		64
#endif

/*
 * CRC-32 eight bytes per step (slicing-by-8, up_crc.c): 7 KiB more of
 * const tables for about four times the speed.  0: one byte per step.
 */
#ifndef UP_CRC32_SLICE8
#define UP_CRC32_SLICE8		1
#endif

/* ------------------------------------------------------------------ */
/* The node engine (up_node.c)                                        */

/*
 * Work the engine does in steps, one step per up_node_tick(), so that a
 * node keeps answering frames while it erases, hashes or rebuilds an
 * image (a polled link asks within its response time).  Choose each so
 * that one step takes well under that time on the port's flash and CPU:
 * a step's time is about STEP / (erase, hash or apply rate).  The erase
 * step must be a multiple of the flash's erase sector.
 */
/* Bytes of the staging slot (or package area) erased per step. */
#ifndef UP_NODE_ERASE_STEP
#define UP_NODE_ERASE_STEP	(64u * 1024)
#endif
/* Bytes read and hashed (SHA-256) per step of a verification. */
#ifndef UP_NODE_VERIFY_STEP
#define UP_NODE_VERIFY_STEP	(32u * 1024)
#endif
/*
 * Hash on receipt (docs/up-node-engine.md, "Hash on receipt"): the
 * package's SHA-256 runs over the contiguous prefix of blocks held as
 * they arrive, so VERIFY only finishes it.  The port's SHA-256 context
 * then lives from the OFFER to the VERIFY; 0 for a port whose SHA-256
 * (a shared hardware engine) cannot be held that long: VERIFY hashes
 * the whole area, as before.
 */
#ifndef UP_NODE_HASH_RX
#define UP_NODE_HASH_RX		1
#endif
/* Image bytes a delta apply writes per step. */
#ifndef UP_NODE_APPLY_STEP
#define UP_NODE_APPLY_STEP	(64u * 1024)
#endif

/* Blocks received between two saves of the block bitmap (at most). */
#ifndef UP_NODE_SAVE_EVERY
#define UP_NODE_SAVE_EVERY	64
#endif
/*
 * Flash wear: a progress save (the bitmap, with or without the state
 * blob) happens only once the blocks it records hold at least
 * UP_NODE_SAVE_RATIO times the bytes the save writes.  With 1 the
 * bitmap never costs more flash writes than the data it tracks, however
 * small the blocks (docs/up-node-engine.md, "Persistence and flash
 * wear").  State changes are saved whatever the ratio.
 */
#ifndef UP_NODE_SAVE_RATIO
#define UP_NODE_SAVE_RATIO	1
#endif
/* A received block is saved within this delay (if the wear rule lets). */
#ifndef UP_NODE_SAVE_DELAY_MS
#define UP_NODE_SAVE_DELAY_MS	1000
#endif
/* Longest interval up_node_next_ms() asks for. */
#ifndef UP_NODE_IDLE_MS
#define UP_NODE_IDLE_MS		60000
#endif
/*
 * A session with no frame for this long (or its deadline_s) is stale:
 * a new offer for another package may replace it.
 */
#ifndef UP_NODE_STALE_S
#define UP_NODE_STALE_S		300
#endif
/*
 * Final RESULT back-off (docs/up-protocol.md §5.2 step 7): the first
 * resend after UP_NODE_RESULT_MIN_MS, doubling, at most
 * UP_NODE_RESULT_MAX_MS.  A node on a duty-cycled link raises the
 * maximum.
 */
#ifndef UP_NODE_RESULT_MIN_MS
#define UP_NODE_RESULT_MIN_MS	1000
#endif
#ifndef UP_NODE_RESULT_MAX_MS
#define UP_NODE_RESULT_MAX_MS	30000
#endif
/* Parity group decoders a FEC workspace is cut into (at most 8). */
#ifndef UP_NODE_FEC_SLOTS
#define UP_NODE_FEC_SLOTS	4
#endif
/*
 * Parity rows each group decoder keeps in RAM, at most (the row budget;
 * up_node_set_fec_rows() at run time).  Rows beyond it go to the port's
 * row store (up_port.rows_*).  The default: as many as the workspace
 * holds.
 */
#ifndef UP_NODE_FEC_ROWS
#define UP_NODE_FEC_ROWS	UP_FEC_K_MAX
#endif

#endif /* UP_CONFIG_H */
