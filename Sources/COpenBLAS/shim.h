#ifndef DCNET_COPENBLAS_SHIM_H
#define DCNET_COPENBLAS_SHIM_H
#include <cblas.h>
// Declared by OpenBLAS's cblas.h, repeated so the module also builds against
// cblas headers that leave them out (the symbols come from libopenblas).
void openblas_set_num_threads(int num_threads);
int openblas_get_num_threads(void);
#endif
