# Turns a file into a C array: cmake -DIN=file -DOUT=file.c -DNAME=sym -P embed.cmake
# defines `const unsigned char NAME[]` and `const size_t NAME_len` (the file's bytes, without
# a NUL), so the binary carries its documents with no extra file at run time.
file(READ ${IN} hex HEX)
string(LENGTH "${hex}" n)
math(EXPR len "${n} / 2")
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," body "${hex}")
file(WRITE ${OUT} "/* generated from ${IN} by cmake/embed.cmake */\n#include <stddef.h>\n"
     "const unsigned char ${NAME}[] = {${body}0};\nconst size_t ${NAME}_len = ${len};\n")
