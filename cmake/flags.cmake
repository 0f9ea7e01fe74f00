# Compiler flags shared by every target. No -ffast-math anywhere: histogram arithmetic must be
# bit-identical to libcircllhist, which is built without FP contraction (see docs/histogram.md).
add_compile_options(
  -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes -Wformat=2 -Wvla
  -Wno-unused-parameter
  -ffp-contract=off
)
add_compile_definitions(_GNU_SOURCE)
if(SN_WERROR)
  add_compile_options(-Werror)
endif()
if(SN_SANITIZE)
  add_compile_options(-fsanitize=address,undefined -fno-sanitize-recover=all
                      -fno-omit-frame-pointer -O1 -g)
  add_link_options(-fsanitize=address,undefined)
  add_compile_definitions(SN_SANITIZE=1)
endif()
if(SN_FUZZ)
  if(NOT CMAKE_C_COMPILER_ID STREQUAL "Clang")
    message(FATAL_ERROR "SN_FUZZ needs clang (CC=clang)")
  endif()
  # -fno-sanitize-recover: undefined behaviour aborts, so libFuzzer records it as a crash
  # (else UBSan only prints, and a fuzz run passes over a signed overflow)
  add_compile_options(-fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=all
                      -fno-omit-frame-pointer -g)
  add_link_options(-fsanitize=address,undefined)
endif()
