/* ggml_peer.h — optional cross-checks against llama.cpp's own ggml library, opened at run time
 * (nothing of llama.cpp is compiled into the tests): $QB_GGML_LIB, default
 * ../peer/llama.cpp/build/bin/libggml-base.so. Tests using it skip when it is absent. */
#ifndef QB_GGML_PEER_H
#define QB_GGML_PEER_H

#include <dlfcn.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>

/* The library, initialised (ggml converts f16 through a table ggml_init fills, so one context
 * is created and freed first), with every symbol in syms[0..n) resolved into fn[]. NULL when
 * the library or a symbol is missing. Close with dlclose. */
static inline void *qbt_ggml_open(const char *const *syms, int n, void **fn)
{
    const char *path = getenv("QB_GGML_LIB");
    if (!path || !*path) path = "../peer/llama.cpp/build/bin/libggml-base.so";
    void *lib = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!lib) return NULL;
    /* ggml_init takes its parameters by value: size_t mem_size, void *mem_buffer, bool */
    struct ggml_params { size_t mem_size; void *mem_buffer; bool no_alloc; };
    void *(*init)(struct ggml_params) = (void *(*)(struct ggml_params))dlsym(lib, "ggml_init");
    void (*fini)(void *) = (void (*)(void *))dlsym(lib, "ggml_free");
    bool ok = init && fini;
    for (int i = 0; i < n; i++) ok = ok && (fn[i] = dlsym(lib, syms[i])) != NULL;
    if (!ok) {
        fprintf(stderr, "ggml: %s lacks a symbol we need; not comparing\n", path);
        dlclose(lib);
        return NULL;
    }
    fini(init((struct ggml_params){.mem_size = 0, .mem_buffer = NULL, .no_alloc = true}));
    return lib;
}

#endif
