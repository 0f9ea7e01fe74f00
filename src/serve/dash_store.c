/*
 * Dashboards on disk, one JSON file each; see dashboards.h for the layout and the guarantees.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "serve/dash_store.h"
#include "core/file.h"

static pthread_mutex_t write_lock = PTHREAD_MUTEX_INITIALIZER;

bool sn_dash_name_ok(const char *name)
{
    size_t n = 0;

    if (!name || !name[0] || name[0] == '.')
        return false;
    for (const char *p = name; *p; p++, n++) {
        char c = *p;
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-'))
            return false;
    }
    return n <= SN_DASH_NAME_MAX;
}

static void dir_path(const char *datadir, char *out, size_t len)
{
    snprintf(out, len, "%s/dashboards", datadir);
}

/* The file of a dashboard; false when it would not fit. */
static bool file_path(const char *datadir, const char *scope, const char *name, char *out,
                      size_t len)
{
    int n = scope[0] ? snprintf(out, len, "%s/dashboards/%s@%s.json", datadir, scope, name)
                     : snprintf(out, len, "%s/dashboards/%s.json", datadir, name);
    return n > 0 && (size_t)n < len - 8; /* room for ".tmp" */
}

/* The dashboard's name if file is one of scope's ("NAME.json", "SCOPE@NAME.json"), copied into
 * out; else false. */
static bool name_of_file(const char *file, const char *scope, char *out, size_t len)
{
    size_t n = strlen(file), sl = strlen(scope);
    const char *at = strchr(file, '@');

    if (n < 6 || strcmp(file + n - 5, ".json") != 0)
        return false;
    if (scope[0]) {
        if (!at || (size_t)(at - file) != sl || strncmp(file, scope, sl) != 0)
            return false;
        file = at + 1;
        n -= sl + 1;
    } else if (at) {
        return false;
    }
    if (n - 5 >= len)
        return false;
    memcpy(out, file, n - 5);
    out[n - 5] = '\0';
    return sn_dash_name_ok(out);
}

static size_t count_scope(const char *datadir, const char *scope)
{
    char dir[1024], name[SN_DASH_NAME_MAX + 1];
    struct dirent *e;
    size_t n = 0;
    DIR *d;

    dir_path(datadir, dir, sizeof(dir));
    if (!(d = opendir(dir)))
        return 0;
    while ((e = readdir(d)) != NULL)
        n += name_of_file(e->d_name, scope, name, sizeof(name));
    closedir(d);
    return n;
}

int sn_dash_put(const char *datadir, const char *scope, const char *name, const json_t *doc,
                bool *created)
{
    char dir[1024], path[1024], *text;
    int rc;

    if (!sn_dash_name_ok(name) || !file_path(datadir, scope, name, path, sizeof(path)))
        return -EINVAL;
    text = json_dumps(doc, JSON_COMPACT);
    if (!text)
        return -ENOMEM;
    dir_path(datadir, dir, sizeof(dir));
    pthread_mutex_lock(&write_lock);
    if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
        rc = -errno;
        goto out;
    }
    *created = access(path, F_OK) != 0;
    if (*created && count_scope(datadir, scope) >= SN_DASH_PER_SCOPE) {
        rc = -EDQUOT;
        goto out;
    }
    rc = sn_file_write_atomic(path, text, strlen(text));
out:
    pthread_mutex_unlock(&write_lock);
    free(text);
    return rc;
}

int sn_dash_get(const char *datadir, const char *scope, const char *name, json_t **out)
{
    char path[1024];
    json_t *j;

    if (!sn_dash_name_ok(name) || !file_path(datadir, scope, name, path, sizeof(path)))
        return -ENOENT;
    if (access(path, F_OK) != 0)
        return -ENOENT;
    j = json_load_file(path, 0, NULL);
    if (!json_is_object(j)) {
        json_decref(j);
        return -EIO;
    }
    *out = j;
    return 0;
}

int sn_dash_delete(const char *datadir, const char *scope, const char *name)
{
    char dir[1024], path[1024];
    int rc = 0;

    if (!sn_dash_name_ok(name) || !file_path(datadir, scope, name, path, sizeof(path)))
        return -ENOENT;
    dir_path(datadir, dir, sizeof(dir));
    pthread_mutex_lock(&write_lock);
    if (unlink(path) < 0)
        rc = errno == ENOENT ? -ENOENT : -errno;
    else
        sn_file_sync_dir(dir);
    pthread_mutex_unlock(&write_lock);
    return rc;
}

static int by_name(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

int sn_dash_names(const char *datadir, const char *scope, json_t **out)
{
    char dir[1024], name[SN_DASH_NAME_MAX + 1];
    char *names[SN_DASH_PER_SCOPE * 2];
    size_t n = 0;
    struct dirent *e;
    json_t *arr = json_array();
    DIR *d;

    if (!arr)
        return -ENOMEM;
    dir_path(datadir, dir, sizeof(dir));
    if ((d = opendir(dir)) != NULL) {
        while ((e = readdir(d)) != NULL && n < sizeof(names) / sizeof(names[0]))
            if (name_of_file(e->d_name, scope, name, sizeof(name)) && (names[n] = strdup(name)))
                n++;
        closedir(d);
    }
    qsort(names, n, sizeof(names[0]), by_name);
    for (size_t i = 0; i < n; i++) {
        json_array_append_new(arr, json_string(names[i]));
        free(names[i]);
    }
    *out = arr;
    return 0;
}
