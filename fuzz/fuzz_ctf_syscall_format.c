/*
 * Fuzz target: ctf/syscall_tab.h's parser of tracefs system call formats
 * (sys_enter_<name>/format), whose field names and C types become CTF event fields. The input's
 * first line is the system call's name, the rest the format text, copied into a buffer of
 * exactly its size (no NUL) so ASan catches a read past it. Properties:
 *
 *   - no crash; the result is 0, -EINVAL or -ENOENT;
 *   - on success: at most 6 arguments, each with a NUL-terminated non-empty name of identifier
 *     characters, a kind among the syscall ones (i32, u32, i64, u64, x64, string) and a
 *     direction (in, out, inout); the number is the name's (sendfile64: sendfile's);
 *   - the same bytes parse to the same result twice (no hidden state).
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ctf/field.h"
#include "ctf/syscall_tab.h"
#include "fuzz_check.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *nl = memchr(data, '\n', size);
    size_t nlen = nl ? (size_t)(nl - data) : size;
    if (nlen >= 64)
        return 0;
    char name[64];
    memcpy(name, data, nlen);
    name[nlen] = '\0';
    size_t tlen = nl ? size - nlen - 1 : 0;
    char *text = malloc(tlen ? tlen : 1);
    if (!text)
        return 0;
    if (tlen)
        memcpy(text, nl + 1, tlen);

    struct sn_syscall a, b;
    int rc = sn_syscall_parse_format(name, text, tlen, &a);
    FUZZ_CHECK(rc == 0 || rc == -EINVAL || rc == -ENOENT);
    int rc2 = sn_syscall_parse_format(name, text, tlen, &b);
    FUZZ_CHECK(rc2 == rc);
    if (rc == 0) {
        FUZZ_CHECK(a.nargs <= 6);
        FUZZ_CHECK(a.nr >= 0);
        FUZZ_CHECK(strcmp(a.name, name) == 0);
        FUZZ_CHECK(memcmp(&a, &b, sizeof(a)) == 0);
        for (int i = 0; i < a.nargs; i++) {
            const struct sn_sc_arg *g = &a.args[i];
            size_t n = strnlen(g->name, sizeof(g->name));
            FUZZ_CHECK(n > 0 && n < sizeof(g->name));
            for (size_t k = 0; k < n; k++) {
                char c = g->name[k];
                FUZZ_CHECK(c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                           (c >= '0' && c <= '9'));
            }
            FUZZ_CHECK(g->kind == SN_CTF_I32 || g->kind == SN_CTF_U32 || g->kind == SN_CTF_I64 ||
                       g->kind == SN_CTF_U64 || g->kind == SN_CTF_X64 || g->kind == SN_CTF_STRING);
            FUZZ_CHECK(g->dir == SN_SC_IN || g->dir == SN_SC_OUT || g->dir == SN_SC_INOUT);
        }
    }
    free(text);
    return 0;
}
