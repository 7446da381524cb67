// The dlopen'd oneDNN matmul; see include/dcnet_dnnl.h for why oneDNN is loaded at run time.
#include "dcnet_dnnl.h"

#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#endif

// ---- The part of oneDNN 2.x's C API used here (oneapi/dnnl/dnnl.h, dnnl_types.h) ----
// Handles are opaque pointers; the two descriptors are plain structs in 2.x that the library
// fills, so opaque storage at least as large as them (checked below when the header exists) does.
typedef int dnnl_status;
typedef int64_t dnnl_dims[12];  // DNNL_MAX_NDIMS
typedef struct { _Alignas(8) unsigned char bytes[1024]; } memory_desc;   // dnnl_memory_desc_t: 696 B
typedef struct { _Alignas(8) unsigned char bytes[4096]; } matmul_desc;   // dnnl_matmul_desc_t: 2800 B
typedef struct { int arg; void *memory; } exec_arg;                      // dnnl_exec_arg_t
typedef struct { int major, minor, patch; const char *hash; unsigned cpu_runtime, gpu_runtime; } version_info;

enum { k_success = 0, k_bf16 = 2, k_f32 = 3, k_cpu = 1, k_stream_default_flags = 1 };
enum { k_arg_src = 1, k_arg_dst = 17, k_arg_weights = 33, k_query_impl_info_str = 8 };

// DCNET_DNNL_NO_HEADER_CHECK builds as on a machine without the header.
#if !defined(DCNET_DNNL_NO_HEADER_CHECK) && __has_include(<oneapi/dnnl/dnnl.h>)
#include <oneapi/dnnl/dnnl.h>
_Static_assert(sizeof(dnnl_memory_desc_t) <= sizeof(memory_desc), "memory_desc storage too small");
_Static_assert(sizeof(dnnl_matmul_desc_t) <= sizeof(matmul_desc), "matmul_desc storage too small");
_Static_assert(sizeof(dnnl_exec_arg_t) == sizeof(exec_arg), "exec_arg layout");
_Static_assert(sizeof(dnnl_version_t) == sizeof(version_info), "version layout");
_Static_assert(DNNL_MAX_NDIMS == 12, "dims");
_Static_assert((int)dnnl_success == k_success && (int)dnnl_bf16 == k_bf16 && (int)dnnl_f32 == k_f32, "enums");
_Static_assert((int)dnnl_cpu == k_cpu && (int)dnnl_stream_default_flags == k_stream_default_flags, "enums");
_Static_assert((int)dnnl_query_impl_info_str == k_query_impl_info_str, "query value");
_Static_assert(DNNL_ARG_SRC == k_arg_src && DNNL_ARG_DST == k_arg_dst && DNNL_ARG_WEIGHTS == k_arg_weights, "args");
#endif

static struct {
    void *library;
    dnnl_status (*engine_create)(void **, int, size_t);
    dnnl_status (*stream_create)(void **, void *, unsigned);
    dnnl_status (*stream_wait)(void *);
    dnnl_status (*memory_desc_init_by_strides)(memory_desc *, int, const int64_t *, int, const int64_t *);
    dnnl_status (*matmul_desc_init)(
        matmul_desc *, const memory_desc *, const memory_desc *, const memory_desc *, const memory_desc *);
    dnnl_status (*primitive_attr_create)(void **);
    dnnl_status (*primitive_attr_destroy)(void *);
    dnnl_status (*primitive_attr_set_output_scales)(void *, int64_t, int, const float *);
    dnnl_status (*primitive_attr_set_post_ops)(void *, const void *);
    dnnl_status (*post_ops_create)(void **);
    dnnl_status (*post_ops_destroy)(void *);
    dnnl_status (*post_ops_append_sum)(void *, float);
    dnnl_status (*primitive_desc_create)(void **, const void *, const void *, void *, const void *);
    dnnl_status (*primitive_desc_query)(const void *, int, int, void *);
    dnnl_status (*primitive_desc_destroy)(void *);
    dnnl_status (*primitive_create)(void **, const void *);
    dnnl_status (*primitive_destroy)(void *);
    dnnl_status (*primitive_execute)(const void *, void *, int, const exec_arg *);
    dnnl_status (*memory_create)(void **, const memory_desc *, void *, void *);
    dnnl_status (*memory_set_data_handle)(void *, void *);
    dnnl_status (*memory_destroy)(void *);
    const version_info *(*version)(void);
    unsigned (*get_effective_cpu_isa)(void);
    void (*omp_set_num_threads)(int);
    void *engine, *stream;
} dnnl;

static void set_error(char *error, size_t capacity, const char *format, const char *detail) {
    if (error && capacity > 0) snprintf(error, capacity, format, detail ? detail : "");
}

int dcnet_dnnl_is_loaded(void) { return dnnl.stream != NULL; }

int dcnet_dnnl_load(const char *name, char *error, size_t capacity) {
    if (dnnl.stream) return 0;
    if (!name) name = "libdnnl.so.2";
    void *library = dlopen(name, RTLD_NOW | RTLD_LOCAL);
    if (!library) {
        set_error(error, capacity, "cannot load oneDNN: %s", dlerror());
        return -1;
    }
#define RESOLVE(field, symbol)                                                        \
    do {                                                                              \
        *(void **)(&dnnl.field) = dlsym(library, symbol);                             \
        if (!dnnl.field) {                                                            \
            set_error(error, capacity, "oneDNN lacks %s (is it oneDNN 2.x?)", symbol); \
            dlclose(library);                                                         \
            memset(&dnnl, 0, sizeof dnnl);                                            \
            return -1;                                                                \
        }                                                                             \
    } while (0)
    RESOLVE(version, "dnnl_version");
    const version_info *v = dnnl.version();
    if (v->major != 2) {
        char found[32];
        snprintf(found, sizeof found, "%d.%d.%d", v->major, v->minor, v->patch);
        set_error(error, capacity, "oneDNN %s found; this build needs oneDNN 2.x (libdnnl.so.2)", found);
        dlclose(library);
        memset(&dnnl, 0, sizeof dnnl);
        return -1;
    }
    RESOLVE(engine_create, "dnnl_engine_create");
    RESOLVE(stream_create, "dnnl_stream_create");
    RESOLVE(stream_wait, "dnnl_stream_wait");
    RESOLVE(memory_desc_init_by_strides, "dnnl_memory_desc_init_by_strides");
    RESOLVE(matmul_desc_init, "dnnl_matmul_desc_init");
    RESOLVE(primitive_attr_create, "dnnl_primitive_attr_create");
    RESOLVE(primitive_attr_destroy, "dnnl_primitive_attr_destroy");
    RESOLVE(primitive_attr_set_output_scales, "dnnl_primitive_attr_set_output_scales");
    RESOLVE(primitive_attr_set_post_ops, "dnnl_primitive_attr_set_post_ops");
    RESOLVE(post_ops_create, "dnnl_post_ops_create");
    RESOLVE(post_ops_destroy, "dnnl_post_ops_destroy");
    RESOLVE(post_ops_append_sum, "dnnl_post_ops_append_sum");
    RESOLVE(primitive_desc_create, "dnnl_primitive_desc_create");
    RESOLVE(primitive_desc_query, "dnnl_primitive_desc_query");
    RESOLVE(primitive_desc_destroy, "dnnl_primitive_desc_destroy");
    RESOLVE(primitive_create, "dnnl_primitive_create");
    RESOLVE(primitive_destroy, "dnnl_primitive_destroy");
    RESOLVE(primitive_execute, "dnnl_primitive_execute");
    RESOLVE(memory_create, "dnnl_memory_create");
    RESOLVE(memory_set_data_handle, "dnnl_memory_set_data_handle");
    RESOLVE(memory_destroy, "dnnl_memory_destroy");
    RESOLVE(get_effective_cpu_isa, "dnnl_get_effective_cpu_isa");
#undef RESOLVE
    // The OpenMP runtime oneDNN was built against (libgomp on Debian) is among its dependencies.
    *(void **)(&dnnl.omp_set_num_threads) = dlsym(library, "omp_set_num_threads");
    dnnl.library = library;
    void *engine = NULL, *stream = NULL;
    if (dnnl.engine_create(&engine, k_cpu, 0) != k_success
        || dnnl.stream_create(&stream, engine, k_stream_default_flags) != k_success) {
        set_error(error, capacity, "oneDNN could not create a CPU engine and stream%s", NULL);
        dlclose(library);
        memset(&dnnl, 0, sizeof dnnl);
        return -1;
    }
    dnnl.engine = engine;
    dnnl.stream = stream;
    return 0;
}

void dcnet_dnnl_version(int *major, int *minor, int *patch) {
    const version_info *v = dnnl.version ? dnnl.version() : NULL;
    *major = v ? v->major : 0;
    *minor = v ? v->minor : 0;
    *patch = v ? v->patch : 0;
}

unsigned dcnet_dnnl_effective_isa(void) { return dnnl.get_effective_cpu_isa ? dnnl.get_effective_cpu_isa() : 0; }

int dcnet_dnnl_set_threads(int threads) {
    if (!dnnl.omp_set_num_threads) return -1;
    dnnl.omp_set_num_threads(threads < 1 ? 1 : threads);
    return 0;
}

unsigned dcnet_cpu_bf16_features(void) {
    unsigned features = 0;
#if defined(__x86_64__) || defined(__i386__)
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d) || !(c & (1u << 27))) return 0;  // OSXSAVE
    unsigned xcr0_lo, xcr0_hi;
    __asm__ volatile("xgetbv" : "=a"(xcr0_lo), "=d"(xcr0_hi) : "c"(0));
    int avx512_state = (xcr0_lo & 0xE6) == 0xE6;               // SSE, AVX, opmask, ZMM state
    int amx_state = (xcr0_lo & (3u << 17)) == (3u << 17);      // XTILECFG, XTILEDATA
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return 0;
    int avx512f = (b >> 16) & 1, amx_bf16 = (d >> 22) & 1, amx_tile = (d >> 24) & 1;
    unsigned max_subleaf = a;
    if (max_subleaf >= 1 && __get_cpuid_count(7, 1, &a, &b, &c, &d)) {
        if (avx512_state && avx512f && ((a >> 5) & 1)) features |= 1;  // AVX512_BF16
    }
    if (amx_state && amx_bf16 && amx_tile) features |= 2;
#endif
    return features;
}

struct dcnet_dnnl_matmul {
    void *primitive, *src, *weights, *dst;
    char implementation[128];
};

void dcnet_dnnl_matmul_destroy(dcnet_dnnl_matmul *matmul) {
    if (!matmul) return;
    if (matmul->src) dnnl.memory_destroy(matmul->src);
    if (matmul->weights) dnnl.memory_destroy(matmul->weights);
    if (matmul->dst) dnnl.memory_destroy(matmul->dst);
    if (matmul->primitive) dnnl.primitive_destroy(matmul->primitive);
    free(matmul);
}

dcnet_dnnl_matmul *dcnet_dnnl_matmul_create(
    int transpose_a, int transpose_b, int64_t batch, int64_t m, int64_t n, int64_t k, float alpha,
    int64_t lda, int64_t stride_a, int64_t ldb, int64_t stride_b, float beta, int64_t ldc,
    int64_t stride_c, char *error, size_t capacity) {
    if (!dnnl.stream) {
        set_error(error, capacity, "oneDNN is not loaded%s", NULL);
        return NULL;
    }
    // Row-major op(A) is src [m×k], op(B) is weights [k×n]; a transposed operand is the same
    // matrix with swapped strides.
    // A batch is a leading dimension with the given strides.
    int b = batch > 1, ndims = 2 + b;
    dnnl_dims src_dims = {0}, src_strides = {0}, wei_dims = {0}, wei_strides = {0}, dst_dims = {0}, dst_strides = {0};
    if (b) {
        src_dims[0] = wei_dims[0] = dst_dims[0] = batch;
        src_strides[0] = stride_a;
        wei_strides[0] = stride_b;
        dst_strides[0] = stride_c;
    }
    src_dims[b] = m; src_dims[b + 1] = k;
    src_strides[b] = transpose_a ? 1 : lda; src_strides[b + 1] = transpose_a ? lda : 1;
    wei_dims[b] = k; wei_dims[b + 1] = n;
    wei_strides[b] = transpose_b ? 1 : ldb; wei_strides[b + 1] = transpose_b ? ldb : 1;
    dst_dims[b] = m; dst_dims[b + 1] = n;
    dst_strides[b] = ldc; dst_strides[b + 1] = 1;
    memory_desc src_md, wei_md, dst_md;
    matmul_desc desc;
    const char *failed = NULL;
    void *attr = NULL, *post_ops = NULL, *pd = NULL;
    dcnet_dnnl_matmul *matmul = calloc(1, sizeof *matmul);
    if (!matmul) {
        set_error(error, capacity, "out of memory%s", NULL);
        return NULL;
    }
    if (dnnl.memory_desc_init_by_strides(&src_md, ndims, src_dims, k_bf16, src_strides) != k_success
        || dnnl.memory_desc_init_by_strides(&wei_md, ndims, wei_dims, k_bf16, wei_strides) != k_success
        || dnnl.memory_desc_init_by_strides(&dst_md, ndims, dst_dims, k_f32, dst_strides) != k_success)
        failed = "dnnl_memory_desc_init_by_strides";
    else if (dnnl.matmul_desc_init(&desc, &src_md, &wei_md, NULL, &dst_md) != k_success)
        failed = "dnnl_matmul_desc_init";
    else if (dnnl.primitive_attr_create(&attr) != k_success)
        failed = "dnnl_primitive_attr_create";
    else if (alpha != 1 && dnnl.primitive_attr_set_output_scales(attr, 1, 0, &alpha) != k_success)
        failed = "dnnl_primitive_attr_set_output_scales";
    else if (beta != 0
             && (dnnl.post_ops_create(&post_ops) != k_success
                 || dnnl.post_ops_append_sum(post_ops, beta) != k_success
                 || dnnl.primitive_attr_set_post_ops(attr, post_ops) != k_success))
        failed = "the sum post-op (beta)";
    else if (dnnl.primitive_desc_create(&pd, &desc, attr, dnnl.engine, NULL) != k_success)
        failed = "dnnl_primitive_desc_create (no bf16 matmul for this shape on this CPU?)";
    else if (dnnl.primitive_create(&matmul->primitive, pd) != k_success)
        failed = "dnnl_primitive_create";
    else if (dnnl.memory_create(&matmul->src, &src_md, dnnl.engine, NULL) != k_success
             || dnnl.memory_create(&matmul->weights, &wei_md, dnnl.engine, NULL) != k_success
             || dnnl.memory_create(&matmul->dst, &dst_md, dnnl.engine, NULL) != k_success)
        failed = "dnnl_memory_create";
    if (pd) {
        const char *info = NULL;
        if (dnnl.primitive_desc_query(pd, k_query_impl_info_str, 0, &info) == k_success && info)
            snprintf(matmul->implementation, sizeof matmul->implementation, "%s", info);
        dnnl.primitive_desc_destroy(pd);
    }
    if (post_ops) dnnl.post_ops_destroy(post_ops);
    if (attr) dnnl.primitive_attr_destroy(attr);
    if (failed) {
        set_error(error, capacity, "oneDNN matmul: %s failed", failed);
        dcnet_dnnl_matmul_destroy(matmul);
        return NULL;
    }
    return matmul;
}

int dcnet_dnnl_matmul_execute(dcnet_dnnl_matmul *matmul, const uint16_t *a, const uint16_t *b, float *c) {
    dnnl_status status;
    if ((status = dnnl.memory_set_data_handle(matmul->src, (void *)a)) != k_success) return status;
    if ((status = dnnl.memory_set_data_handle(matmul->weights, (void *)b)) != k_success) return status;
    if ((status = dnnl.memory_set_data_handle(matmul->dst, c)) != k_success) return status;
    exec_arg args[3] = {
        {k_arg_src, matmul->src}, {k_arg_weights, matmul->weights}, {k_arg_dst, matmul->dst}};
    if ((status = dnnl.primitive_execute(matmul->primitive, dnnl.stream, 3, args)) != k_success) return status;
    return dnnl.stream_wait(dnnl.stream);
}

const char *dcnet_dnnl_matmul_implementation(const dcnet_dnnl_matmul *matmul) { return matmul->implementation; }
