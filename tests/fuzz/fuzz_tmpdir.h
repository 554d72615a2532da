/* fuzz_tmpdir.h — a private temp folder for a libFuzzer target that must hand its input to a
 * loader as files: made once in LLVMFuzzerInitialize (under $QB_FUZZ_TMP, which fuzz.sh
 * removes afterwards, else /dev/shm, else $TMPDIR, else /tmp), the named files in it and the
 * folder itself removed at exit. Header-only: each target is one translation unit. */
#ifndef QB_FUZZ_TMPDIR_H
#define QB_FUZZ_TMPDIR_H

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#define FUZZ_TMP_FILES 4

static char fuzz_tmp_dir[256];
static char fuzz_tmp_files[FUZZ_TMP_FILES][300];

static void fuzz_tmpdir_cleanup(void)
{
    for (int i = 0; i < FUZZ_TMP_FILES; i++)
        if (fuzz_tmp_files[i][0]) unlink(fuzz_tmp_files[i]);
    if (fuzz_tmp_dir[0]) rmdir(fuzz_tmp_dir);
}

/* Make the folder qb-fuzz-<tag>-XXXXXX (aborting the fuzzer when that fails) and register the
 * cleanup. Returns the folder's path (static storage). */
static const char *fuzz_tmpdir_make(const char *tag)
{
    const char *base = getenv("QB_FUZZ_TMP");
    if (!base || !*base) base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : getenv("TMPDIR");
    snprintf(fuzz_tmp_dir, sizeof fuzz_tmp_dir, "%s/qb-fuzz-%s-XXXXXX", base && *base ? base : "/tmp", tag);
    if (!mkdtemp(fuzz_tmp_dir)) {
        fprintf(stderr, "fuzz-%s: mkdtemp %s: ", tag, fuzz_tmp_dir);
        perror(NULL);
        abort();
    }
    atexit(fuzz_tmpdir_cleanup);
    return fuzz_tmp_dir;
}

/* Path of file `name` in the folder, in slot (0..FUZZ_TMP_FILES-1); removed at exit. */
static const char *fuzz_tmpdir_file(int slot, const char *name)
{
    snprintf(fuzz_tmp_files[slot], sizeof fuzz_tmp_files[slot], "%s/%s", fuzz_tmp_dir, name);
    return fuzz_tmp_files[slot];
}

#endif
