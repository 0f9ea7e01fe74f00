/*
 * Kernel-side views of BPF objects for tests; see kernel_view.h. Walks the kernel's link ids
 * (BPF_LINK_GET_NEXT_ID) and asks each link which program it runs.
 */
#include <string.h>
#include <unistd.h>

#include <bpf/bpf.h>

#include "kernel_view.h"

int t_kernel_links_to(const uint32_t *ids, int n)
{
    uint32_t id = 0;
    int found = 0;

    while (bpf_link_get_next_id(id, &id) == 0) {
        struct bpf_link_info info;
        uint32_t len = sizeof(info);
        int fd = bpf_link_get_fd_by_id(id);
        if (fd < 0)
            continue;
        memset(&info, 0, sizeof(info));
        if (bpf_obj_get_info_by_fd(fd, &info, &len) == 0)
            for (int i = 0; i < n; i++)
                found += info.prog_id == ids[i];
        close(fd);
    }
    return found;
}
