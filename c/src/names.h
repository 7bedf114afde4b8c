/* Names: the namespace rule and the names of the segments of a namespace (spec/bootstrap.md §2), and
 * the one string copy (ir_strdup, declared in internal.h) every layer uses for the names it keeps. */
#ifndef IR_NAMES_H
#define IR_NAMES_H

#include <stdbool.h>
#include <stddef.h>

#include "internal.h"

#define IR_MAX_NS_LEN 64
/* Room for "/impulse-ring.<ns>." and its NUL. */
#define IR_SEG_PREFIX_MAX (IR_MAX_NS_LEN + 32)

/* Whether `ns` is 1 to 64 characters of A-Z, a-z, 0-9, '_' and '-'. */
bool ir_valid_namespace(const char *ns);

/* "/impulse-ring.<ns>.", the prefix of every segment of the namespace, into `out`. */
void ir_segment_prefix(const char *ns, char out[IR_SEG_PREFIX_MAX]);

/* "/impulse-ring.<ns>.ctl", the namespace's control segment, into `out`. */
void ir_control_segment_name(const char *ns, char out[IR_SEG_NAME_MAX]);

/* Whether a segment name the broker sent starts with `prefix` and fits IR_SEG_NAME_MAX. */
bool ir_segment_in_namespace(const char *prefix, const char *name);

#endif /* IR_NAMES_H */
