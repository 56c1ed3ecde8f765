/*
 * up_config.h: compile-time options of the UP library.
 *
 * Every option is "#ifndef X / #define X default", so a port can override
 * any of them by defining it before this file is included (for instance
 * with -DUP_MAX_COMPONENTS=4 or a port header passed with -include).
 * Sizes here bound every fixed array in up.h: nothing in up/ allocates.
 */
#ifndef UP_CONFIG_H
#define UP_CONFIG_H

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

#endif /* UP_CONFIG_H */
