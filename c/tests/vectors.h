/* The spec's control-record vectors, checked by the C codec (vectors.c). */
#ifndef IR_TEST_VECTORS_H
#define IR_TEST_VECTORS_H

#include <stddef.h>
#include <stdint.h>

/* Decodes hex text (trailing blanks and line ends ignored) into a malloc'd buffer of *len bytes; NULL
 * when the text is not hex. */
uint8_t *parse_hex(const char *text, size_t *len);

/* Checks every case of spec/vectors/control.txt at `path`; returns the number of failures and stores
 * the number of cases in *cases. */
int test_control_vectors(const char *path, int *cases);

#endif
