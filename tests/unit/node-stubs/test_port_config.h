/*
 * test_port_config.h: a port's configuration of up/ (UP_CONFIG_FILE),
 * for test_up_node_cfg: a small MCU on a slow, polled link.
 */
#ifndef TEST_PORT_CONFIG_H
#define TEST_PORT_CONFIG_H

#define UP_NODE_ERASE_STEP	4096u	/* one flash sector */
#define UP_NODE_VERIFY_STEP	1024u
#define UP_NODE_SAVE_EVERY	8
#define UP_NODE_STALE_S		10
#define UP_NODE_RESULT_MIN_MS	500
#define UP_NODE_RESULT_MAX_MS	4000
#define UP_NODE_IDLE_MS		5000
/* 1.5 KiB of CRC tables, not 8.5: one byte per step. */
#define UP_CRC32_SLICE8		0
/* Its SHA-256 engine is shared: VERIFY hashes the whole slot. */
#define UP_NODE_HASH_RX		0

#endif /* TEST_PORT_CONFIG_H */
