// KVMT_SANITIZED is defined when AddressSanitizer or ThreadSanitizer instruments this build: their
// runtimes own malloc, so tests that interpose malloc use the sanitizer's allocation hooks
// (sanitizer/allocator_interface.h) instead.
#pragma once

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define KVMT_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define KVMT_SANITIZED 1
#endif
#endif
