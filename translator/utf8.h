// UTF-8 validation for untrusted text: requests are checked before they reach a tokenizer.
#pragma once

#include <string_view>

namespace kvmt {

// True when `text` is well-formed UTF-8 (no overlong forms, surrogates or code points past
// U+10FFFF). On failure, *error_offset (if given) is the byte offset of the first bad sequence.
bool IsValidUtf8(std::string_view text, size_t* error_offset = nullptr);

}  // namespace kvmt
