# cmake -DIN=file -DOUT=header -DNAME=kSymbol -P EmbedFile.cmake
# Writes a header with the file's bytes as `inline constexpr unsigned char NAME[]` and
# `inline constexpr std::size_t NAME_size` (files served by the binary, e.g. the wall page).
file(READ "${IN}" hex HEX)
string(LENGTH "${hex}" length)
math(EXPR size "${length} / 2")
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," bytes "${hex}")
string(REGEX REPLACE "(0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,)" "\\1\n" bytes "${bytes}")
file(WRITE "${OUT}.tmp" "// Generated from ${IN} by cmake/EmbedFile.cmake. Do not edit.\n#pragma once\n#include <cstddef>\n\nnamespace vigil::web {\ninline constexpr unsigned char ${NAME}[] = {\n${bytes}0x00};\ninline constexpr std::size_t ${NAME}_size = ${size};\n}  // namespace vigil::web\n")
file(COPY_FILE "${OUT}.tmp" "${OUT}" ONLY_IF_DIFFERENT)
file(REMOVE "${OUT}.tmp")
