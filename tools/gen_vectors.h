/*
 * gen_vectors.h - the parts of the test vector generator (gen_vectors.c,
 * gen_vectors_wire.c).
 */
#ifndef GEN_VECTORS_H
#define GEN_VECTORS_H

#include "cm_error.h"

/* Prints the table of valid wire messages of the "### Test vectors" part
 * under "## Wire messages", from its header line to its last row. */
cm_err gen_print_wire_vectors(void);

#endif
