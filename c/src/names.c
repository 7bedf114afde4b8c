/* Names: the namespace rule and the segment names derived from it (spec/bootstrap.md §2). */
#include "names.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

bool ir_valid_namespace(const char *ns) {
  size_t len = strlen(ns);
  if (len == 0 || len > IR_MAX_NS_LEN) {
    return false;
  }
  for (size_t i = 0; i < len; i++) {
    char c = ns[i];
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
    if (!ok) {
      return false;
    }
  }
  return true;
}

void ir_segment_prefix(const char *ns, char out[IR_SEG_PREFIX_MAX]) {
  (void)snprintf(out, IR_SEG_PREFIX_MAX, "/impulse-ring.%s.", ns);
}

void ir_control_segment_name(const char *ns, char out[IR_SEG_NAME_MAX]) {
  (void)snprintf(out, IR_SEG_NAME_MAX, "/impulse-ring.%s.ctl", ns);
}

bool ir_segment_in_namespace(const char *prefix, const char *name) {
  return strncmp(name, prefix, strlen(prefix)) == 0 && strlen(name) < IR_SEG_NAME_MAX;
}

char *ir_strdup(const char *s) {
  size_t len = strlen(s);
  char *out = malloc(len + 1);
  if (out != NULL) {
    memcpy(out, s, len + 1);
  }
  return out;
}
