/* Opening a call link's segment (wire-format.md §8): the header, then both rings, every word checked
 * against the object's real size before it is used. */
#include "link.h"

#include <string.h>

ir_error_e ir_link_open(const ir_conn_t *conn, const char *segment, ir_link_t *out) {
  memset(out, 0, sizeof *out);
  ir_error_e code = ir_conn_check_segment_name(conn, segment);
  if (code != IR_OK) {
    return code;
  }
  bool missing = false;
  ir_seg_t *seg = &out->seg;
  code = ir_seg_open(segment, IR_KIND_LINK, seg, &missing);
  if (code != IR_OK) {
    return code;
  }
  if (seg->len < IR_LINK_REQUEST_RING + IR_RING_HEADER_SIZE) {
    ir_seg_close(seg);
    return ir_fail(IR_ERR_CORRUPT, "segment %s is corrupt: %zu bytes is too small for a link", segment, seg->len);
  }
  ir_ring_header_t *first = ir_seg_at(seg, IR_LINK_REQUEST_RING);
  uint64_t capacity = atomic_load_explicit(&first->capacity, memory_order_relaxed);
  uint64_t size = ir_link_response_ring(capacity) + IR_RING_HEADER_SIZE + capacity;
  if (!ir_valid_capacity(capacity) || size != (uint64_t)seg->len) {
    ir_seg_close(seg);
    return ir_fail(IR_ERR_CORRUPT, "segment %s is corrupt: ring capacity %llu does not match %zu bytes", segment,
                   (unsigned long long)capacity, seg->len);
  }
  code = ir_ring_open(seg, IR_LINK_REQUEST_RING, capacity, &out->request);
  if (code == IR_OK) {
    code = ir_ring_open(seg, ir_link_response_ring(capacity), capacity, &out->response);
  }
  if (code != IR_OK) {
    ir_seg_close(seg);
    return code;
  }
  ir_link_header_t *header = ir_seg_at(seg, 0);
  out->header = header;
  out->link_id = atomic_load_explicit(&header->link_id, memory_order_relaxed);
  out->caller = atomic_load_explicit(&header->caller, memory_order_relaxed);
  out->provider = atomic_load_explicit(&header->provider, memory_order_relaxed);
  out->request_fp = atomic_load_explicit(&header->request_fp, memory_order_relaxed);
  out->response_fp = atomic_load_explicit(&header->response_fp, memory_order_relaxed);
  return IR_OK;
}

void ir_link_close(ir_link_t *link) {
  ir_seg_close(&link->seg);
}
