# BPF programs, the libbpf-tools way: src/bpf/NAME.bpf.c -> NAME.bpf.o (clang -target bpf, with
# BTF for CO-RE) -> NAME.skel.h (bpftool gen skeleton), all under ${SN_BPF_GEN}. vmlinux.h is
# dumped once from the build machine's kernel BTF (/sys/kernel/btf/vmlinux); CO-RE relocates
# field offsets at load time, so the objects run on other kernels too. -mcpu=v3 (kernel 5.12+)
# gives fetching atomics and 32-bit jumps.
find_program(SN_BPFTOOL bpftool PATHS /usr/sbin /sbin REQUIRED)
find_program(SN_BPF_CLANG clang REQUIRED)
set(SN_BPF_GEN ${CMAKE_BINARY_DIR}/gen)
file(MAKE_DIRECTORY ${SN_BPF_GEN})

add_custom_command(
  OUTPUT ${SN_BPF_GEN}/vmlinux.h
  COMMAND sh -c "${SN_BPFTOOL} btf dump file /sys/kernel/btf/vmlinux format c > ${SN_BPF_GEN}/vmlinux.h.tmp && mv ${SN_BPF_GEN}/vmlinux.h.tmp ${SN_BPF_GEN}/vmlinux.h"
  COMMENT "bpftool: vmlinux.h from the kernel's BTF"
  VERBATIM)

# sn_bpf_skeleton(NAME SOURCE): defines target NAME_skel producing ${SN_BPF_GEN}/NAME.skel.h
function(sn_bpf_skeleton name src)
  set(obj ${SN_BPF_GEN}/${name}.bpf.o)
  set(skel ${SN_BPF_GEN}/${name}.skel.h)
  file(GLOB bpf_headers ${CMAKE_SOURCE_DIR}/src/bpf/*.h)
  add_custom_command(
    OUTPUT ${obj}
    COMMAND ${SN_BPF_CLANG} -g -O2 -target bpf -mcpu=v3 -D__TARGET_ARCH_x86 -Wall -Werror
            -I${SN_BPF_GEN} -I${CMAKE_SOURCE_DIR}/src
            -idirafter /usr/include/${CMAKE_LIBRARY_ARCHITECTURE} -c ${src} -o ${obj}
    DEPENDS ${src} ${SN_BPF_GEN}/vmlinux.h ${bpf_headers}
            ${CMAKE_SOURCE_DIR}/src/core/hist_bucket.h ${CMAKE_SOURCE_DIR}/src/core/hist_bucket_fuzz.inc
    COMMENT "clang -target bpf: ${name}.bpf.o"
    VERBATIM)
  add_custom_command(
    OUTPUT ${skel}
    COMMAND sh -c "${SN_BPFTOOL} gen skeleton ${obj} name ${name}_bpf > ${skel}.tmp && mv ${skel}.tmp ${skel}"
    DEPENDS ${obj}
    COMMENT "bpftool: ${name}.skel.h"
    VERBATIM)
  add_custom_target(${name}_skel DEPENDS ${skel})
endfunction()

# System call names by number, from the kernel's UAPI header (linux-libc-dev).
set(SN_UNISTD /usr/include/x86_64-linux-gnu/asm/unistd_64.h)
add_custom_command(
  OUTPUT ${SN_BPF_GEN}/syscall_names.inc
  COMMAND ${CMAKE_SOURCE_DIR}/scripts/gen-syscall-names ${SN_UNISTD} ${SN_BPF_GEN}/syscall_names.inc
  DEPENDS ${SN_UNISTD} ${CMAKE_SOURCE_DIR}/scripts/gen-syscall-names
  COMMENT "syscall names from unistd_64.h"
  VERBATIM)
add_custom_target(syscall_names DEPENDS ${SN_BPF_GEN}/syscall_names.inc)
