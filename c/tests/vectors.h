/* The spec's control-record vectors, checked by the C codec (vectors.c). */
#ifndef IR_TEST_VECTORS_H
#define IR_TEST_VECTORS_H

/* Checks every case of spec/vectors/control.txt at `path`; returns the number of failures and stores
 * the number of cases in *cases. */
int test_control_vectors(const char *path, int *cases);

#endif
