/* Mapped shared memory segments: opening with header checks (magic, version written last by the
 * creator, kind, and the size the header claims against the object's real size). The connector
 * never creates or unlinks a segment: the broker owns every name. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "internal.h"

ir_error_e ir_seg_open(const char *name, uint32_t kind, ir_seg_t *out, bool *missing) {
  memset(out, 0, sizeof *out);
  *missing = false;
  if (strlen(name) >= sizeof out->name) {
    return ir_fail(IR_ERR_INVALID_ARGUMENT, "segment name %.64s... is too long", name);
  }
  uint8_t *base = NULL;
  size_t len = 0;
  int err = ir_shm_map(name, IR_SEG_HEADER_SIZE, &base, &len);
  if (err == ENOENT) {
    *missing = true;
    return ir_fail(IR_ERR_IO, "shared memory segment %s does not exist", name);
  }
  if (err == ENODATA) {
    /* Its creator has not sized it yet (or it is garbage): either way, not a usable segment yet. */
    *missing = true;
    return ir_fail(IR_ERR_IO, "segment %s is not ready yet (%zu bytes, smaller than a segment header)", name, len);
  }
  if (err != 0) {
    return ir_fail(IR_ERR_IO, "cannot map shared memory segment %s: %s", name, strerror(err));
  }
  ir_seg_t seg = {.base = base, .len = len};
  (void)snprintf(seg.name, sizeof seg.name, "%s", name);
  ir_seg_header_t *header = (ir_seg_header_t *)base;
  /* SYNC: observe segment — pairs with the creator's Release store of the version word. */
  uint32_t version = atomic_load_explicit(&header->version, memory_order_acquire);
  ir_error_e code = IR_OK;
  if (version == 0) {
    *missing = true;
    code = ir_fail(IR_ERR_IO, "segment %s is not ready yet (its version word is still 0)", name);
  } else if (atomic_load_explicit(&header->magic, memory_order_relaxed) != IR_MAGIC) {
    code = ir_fail(IR_ERR_CORRUPT, "segment %s is corrupt: magic is %#010x, expected %#010x", name,
                   atomic_load_explicit(&header->magic, memory_order_relaxed), (unsigned)IR_MAGIC);
  } else if (version != IR_SPEC_VERSION) {
    code = ir_fail(IR_ERR_VERSION_MISMATCH, "segment %s has wire version %u, this library speaks version %u", name,
                   version, (unsigned)IR_SPEC_VERSION);
  } else if (atomic_load_explicit(&header->kind, memory_order_relaxed) != kind) {
    code = ir_fail(IR_ERR_CORRUPT, "segment %s is corrupt: kind is %u, expected %u", name,
                   atomic_load_explicit(&header->kind, memory_order_relaxed), kind);
  } else if (atomic_load_explicit(&header->size, memory_order_relaxed) != (uint64_t)len) {
    code = ir_fail(IR_ERR_CORRUPT, "segment %s is corrupt: header says %llu bytes but the object is %zu bytes", name,
                   (unsigned long long)atomic_load_explicit(&header->size, memory_order_relaxed), len);
  }
  if (code != IR_OK) {
    ir_shm_unmap(base, len);
    return code;
  }
  *out = seg;
  return IR_OK;
}

void ir_seg_close(ir_seg_t *seg) {
  if (seg->base != NULL) {
    ir_shm_unmap(seg->base, seg->len);
    seg->base = NULL;
    seg->len = 0;
  }
}
