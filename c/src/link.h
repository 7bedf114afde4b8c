/* Call links: the segment of one caller/function pair, two SPSC rings the broker creates (requests
 * one way, responses the other). Opening one is shared by the caller side (caller.c) and the provider
 * side (provider.c) of calls. */
#ifndef IR_LINK_H
#define IR_LINK_H

#include "session.h"

/* An open link segment with its rings validated. */
typedef struct ir_link {
  ir_seg_t seg;
  ir_link_header_t *header;
  ir_ring_t request;
  ir_ring_t response;
  uint64_t link_id;
  uint32_t caller;
  uint32_t provider;
  uint64_t request_fp;
  uint64_t response_fp;
} ir_link_t;

/* Opens the link segment the broker named (it must belong to the namespace), checks that its size
 * fits its ring capacity, and reads its header words. Corrupt, Protocol, Io. */
ir_error_e ir_link_open(const ir_conn_t *conn, const char *segment, ir_link_t *out);

/* Unmaps the link. */
void ir_link_close(ir_link_t *link);

#endif /* IR_LINK_H */
