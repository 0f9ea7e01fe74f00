/*
 * cgroup v2 paths and ids; see cgroup.h.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agent/cgroup.h"

static char root[512];
static pthread_once_t root_once = PTHREAD_ONCE_INIT;

/* mountinfo lines: "id parent maj:min root mountpoint opts [tags] - fstype source superopts" */
static void find_root(void)
{
    FILE *f = fopen("/proc/self/mountinfo", "r");
    char line[4096];

    while (f && fgets(line, sizeof(line), f)) {
        char mnt[512], fstype[64];
        const char *dash = strstr(line, " - ");
        if (!dash || sscanf(dash, " - %63s", fstype) != 1 || strcmp(fstype, "cgroup2") != 0)
            continue;
        if (sscanf(line, "%*s %*s %*s %*s %511s", mnt) == 1) {
            memcpy(root, mnt, sizeof(root));
            break;
        }
    }
    if (f)
        fclose(f);
}

const char *sn_cgroup_root(void)
{
    pthread_once(&root_once, find_root);
    return root[0] ? root : NULL;
}

bool sn_cgroup_id(const char *path, uint64_t *id)
{
    const char *r = sn_cgroup_root();
    char full[4096];
    struct stat st;
    size_t n = strlen(path);

    if (!r || path[0] != '/' || strstr(path, "/..") || n > 3000)
        return false;
    snprintf(full, sizeof(full), "%s%s", r, path);
    if (stat(full, &st) != 0 || !S_ISDIR(st.st_mode))
        return false;
    *id = (uint64_t)st.st_ino;
    return true;
}

/* Copies src into out[len], truncating. */
static void copy_str(char *out, size_t len, const char *src)
{
    size_t n = strnlen(src, len - 1);
    memcpy(out, src, n);
    out[n] = '\0';
}

static bool walk(char *path, size_t len, uint64_t id, int depth)
{
    DIR *d;
    struct dirent *e;
    bool found = false;

    if (depth > 16 || !(d = opendir(path)))
        return false;
    while (!found && (e = readdir(d))) {
        size_t at = strlen(path);
        if (e->d_type != DT_DIR || e->d_name[0] == '.')
            continue;
        if (at + 1 + strlen(e->d_name) >= len)
            continue;
        snprintf(path + at, len - at, "/%s", e->d_name);
        found = (uint64_t)e->d_ino == id || walk(path, len, id, depth + 1);
        if (!found)
            path[at] = '\0';
    }
    closedir(d);
    return found;
}

static struct {
    uint64_t id;
    char path[256];
} cache[128];
static unsigned cache_next;
static pthread_mutex_t cache_lock = PTHREAD_MUTEX_INITIALIZER;

void sn_cgroup_path(uint64_t id, char *out, size_t len)
{
    const char *r = sn_cgroup_root();
    char path[4096];
    struct stat st;

    pthread_mutex_lock(&cache_lock);
    for (unsigned i = 0; i < 128; i++)
        if (cache[i].id == id && cache[i].path[0]) {
            copy_str(out, len, cache[i].path);
            pthread_mutex_unlock(&cache_lock);
            return;
        }
    pthread_mutex_unlock(&cache_lock);
    if (r)
        snprintf(path, sizeof(path), "%s", r);
    if (r && stat(path, &st) == 0 && (uint64_t)st.st_ino == id)
        snprintf(out, len, "/");
    else if (r && walk(path, sizeof(path), id, 0))
        copy_str(out, len, path + strlen(r));
    else {
        snprintf(out, len, "cgroup:%" PRIu64, id); /* gone since: keep the id */
        return;                                    /* and look again next time */
    }
    pthread_mutex_lock(&cache_lock);
    cache[cache_next % 128].id = id;
    copy_str(cache[cache_next % 128].path, sizeof(cache[0].path), out);
    cache_next++;
    pthread_mutex_unlock(&cache_lock);
}

/* The children of the cgroup open at fd (consumed), depth first; a child's id is its
 * directory's inode number. cgroupfs (kernfs) counts a directory's links as 2 + its
 * subdirectories, so a leaf (2) is not listed: listing a cgroup reads all its interface files,
 * several times the cost of the stat. Any other count (a file system that does not keep it)
 * means "look". */
static int walk_below(int fd, int depth, void (*fn)(uint64_t, void *), void *arg)
{
    DIR *d = fdopendir(fd);
    struct dirent *e;
    int n = 0;

    if (!d) {
        close(fd);
        return 0;
    }
    while (depth < SN_CGROUP_WALK_DEPTH && (e = readdir(d))) {
        struct stat st;
        int cfd;
        if ((e->d_type != DT_DIR && e->d_type != DT_UNKNOWN) ||
            (e->d_name[0] == '.' &&
             (e->d_name[1] == '\0' || (e->d_name[1] == '.' && e->d_name[2] == '\0'))) ||
            fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISDIR(st.st_mode))
            continue; /* (or removed meanwhile) */
        fn((uint64_t)st.st_ino, arg);
        n++;
        if (st.st_nlink == 2)
            continue;
        cfd = openat(dirfd(d), e->d_name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (cfd >= 0)
            n += walk_below(cfd, depth + 1, fn, arg);
    }
    closedir(d);
    return n;
}

/* True when path has a ".." component (a name like "..a" is fine). */
static bool climbs(const char *path)
{
    for (const char *at = strstr(path, "/.."); at; at = strstr(at + 1, "/.."))
        if (at[3] == '\0' || at[3] == '/')
            return true;
    return false;
}

int sn_cgroup_walk(const char *path, void (*fn)(uint64_t id, void *arg), void *arg)
{
    const char *r = sn_cgroup_root();
    char full[4096];
    struct stat st;
    int fd;

    if (!r)
        return -ENOENT;
    if (path[0] != '/' || climbs(path) || strlen(path) > 3000)
        return -EINVAL;
    snprintf(full, sizeof(full), "%s%s", r, path);
    fd = open(full, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    if (fstat(fd, &st) != 0) {
        int rc = -errno;
        close(fd);
        return rc;
    }
    fn((uint64_t)st.st_ino, arg);
    if (st.st_nlink == 2) { /* a leaf (see walk_below) */
        close(fd);
        return 1;
    }
    return 1 + walk_below(fd, 0, fn, arg);
}

bool sn_cgroup_of_pid(int pid, char *out, size_t len)
{
    char fn[64], line[4096];
    bool ok = false;
    FILE *f;

    snprintf(fn, sizeof(fn), "/proc/%d/cgroup", pid);
    if (!(f = fopen(fn, "r")))
        return false;
    while (!ok && fgets(line, sizeof(line), f))
        if (strncmp(line, "0::", 3) == 0) {
            line[strcspn(line, "\n")] = '\0';
            copy_str(out, len, line + 3);
            ok = true;
        }
    fclose(f);
    return ok;
}
