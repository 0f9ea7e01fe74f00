/*
 * Fuzz target: the framing checks of a request's head (sn_framing_add, sn_framing_check and
 * sn_target_has_nul of src/http/request.h). The input is header lines "Name: value" separated
 * by '\n'; the first line is also taken as a raw request target. Properties: no crash; the
 * verdict is 0, 400 or 501, with a reason exactly when it is not 0; a sound framing (0) has at
 * most one Transfer-Encoding, never both framings, and every Content-Length of it is the
 * plain decimal number f.cl (a reference parser below); %00 is found exactly when the target
 * holds those three bytes.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "fuzz_check.h"
#include "http/request.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A Content-Length value: blanks, decimal digits that fit 64 bits, blanks. */
static bool ref_length(const char *v, uint64_t *out)
{
    const char *p = v + strspn(v, " \t");
    size_t nd = strspn(p, "0123456789");
    uint64_t x = 0;
    if (nd == 0 || p[nd + strspn(p + nd, " \t")] != '\0')
        return false;
    for (size_t i = 0; i < nd; i++) {
        if (x > (UINT64_MAX - (uint64_t)(p[i] - '0')) / 10)
            return false;
        x = x * 10 + (uint64_t)(p[i] - '0');
    }
    *out = x;
    return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1), *save = NULL;
    struct sn_framing f = {0};
    const char *why = "unset";
    unsigned ncl = 0, nte = 0;
    bool lengths_agree = true, have = false;
    uint64_t first = 0;

    if (!text)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    FUZZ_CHECK(sn_target_has_nul(text) == (strstr(text, "%00") != NULL));
    for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        char *colon = strchr(line, ':');
        if (!colon)
            continue;
        *colon = '\0';
        sn_framing_add(&f, line, colon + 1);
        if (strcasecmp(line, "Content-Length") == 0) {
            uint64_t v;
            ncl++;
            if (!ref_length(colon + 1, &v))
                lengths_agree = false;
            else if (have && v != first)
                lengths_agree = false;
            if (!have && lengths_agree) {
                first = v;
                have = true;
            }
        } else if (strcasecmp(line, "Transfer-Encoding") == 0) {
            nte++;
        }
    }
    int st = sn_framing_check(&f, &why);
    FUZZ_CHECK(st == 0 || st == 400 || st == 501);
    FUZZ_CHECK(st ? why != NULL : why == NULL);
    FUZZ_CHECK(f.ncl == ncl && f.nte == nte);
    if (st == 0) {
        FUZZ_CHECK(nte <= 1 && !(nte && ncl));
        FUZZ_CHECK(lengths_agree);
        FUZZ_CHECK(!ncl || f.cl == first);
        FUZZ_CHECK(!nte || f.te_chunked);
    } else if (ncl && lengths_agree && !nte) {
        FUZZ_CHECK(!"sound lengths refused");
    }
    free(text);
    return 0;
}
