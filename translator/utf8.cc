#include "translator/utf8.h"

#include <cstdint>

namespace kvmt {

bool IsValidUtf8(std::string_view text, size_t* error_offset) {
  const auto* bytes = reinterpret_cast<const unsigned char*>(text.data());
  const size_t size = text.size();
  size_t i = 0;
  while (i < size) {
    const unsigned char lead = bytes[i];
    size_t length = 0;
    uint32_t code_point = 0;
    uint32_t minimum = 0;
    if (lead < 0x80) {
      ++i;
      continue;
    } else if ((lead & 0xE0) == 0xC0) {
      length = 2, code_point = lead & 0x1F, minimum = 0x80;
    } else if ((lead & 0xF0) == 0xE0) {
      length = 3, code_point = lead & 0x0F, minimum = 0x800;
    } else if ((lead & 0xF8) == 0xF0) {
      length = 4, code_point = lead & 0x07, minimum = 0x10000;
    } else {
      if (error_offset != nullptr) *error_offset = i;
      return false;
    }
    bool valid = i + length <= size;
    for (size_t j = 1; valid && j < length; ++j) {
      valid = (bytes[i + j] & 0xC0) == 0x80;
      code_point = (code_point << 6) | (bytes[i + j] & 0x3F);
    }
    valid = valid && code_point >= minimum && code_point <= 0x10FFFF &&
            !(code_point >= 0xD800 && code_point <= 0xDFFF);
    if (!valid) {
      if (error_offset != nullptr) *error_offset = i;
      return false;
    }
    i += length;
  }
  return true;
}

}  // namespace kvmt
