/*
 * Fuzz target: core/tar.h's sn_tar_extract, fed an archive (what `sonde record snapshot -o`
 * unpacks from a server). Properties: no crash; nothing is written outside the target
 * directory (names with "..", absolute names and links are refused), checked by extracting
 * into DIR/in and finding DIR empty but for in/.
 */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/tar.h"
#include "fuzz_check.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static char root[64];
    char in[128], cmd[256];

    if (!root[0]) {
        snprintf(root, sizeof(root), "/tmp/fuzz_tar.XXXXXX");
        if (!mkdtemp(root))
            abort();
    }
    snprintf(in, sizeof(in), "%s/in", root);
    uint8_t *buf = malloc(size ? size : 1);
    if (!buf)
        return 0;
    memcpy(buf, data, size);
    (void)sn_tar_extract(buf, size, in);
    free(buf);
    DIR *d = opendir(root);
    FUZZ_CHECK(d != NULL);
    for (struct dirent *e; (e = readdir(d));)
        FUZZ_CHECK(strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0 ||
                   strcmp(e->d_name, "in") == 0);
    closedir(d);
    snprintf(cmd, sizeof(cmd), "rm -rf %s", in);
    FUZZ_CHECK(system(cmd) == 0);
    return 0;
}
