// Early-return helpers for absl::Status / absl::StatusOr, so fallible calls stay one line each.
#pragma once

#include "absl/status/status.h"
#include "absl/status/statusor.h"

#define KVMT_STATUS_CONCAT_INNER(a, b) a##b
#define KVMT_STATUS_CONCAT(a, b) KVMT_STATUS_CONCAT_INNER(a, b)

// Returns from the current function when `expr` (an absl::Status) is not OK.
#define KVMT_RETURN_IF_ERROR(expr)                 \
  do {                                             \
    const absl::Status kvmt_status_ = (expr);      \
    if (!kvmt_status_.ok()) return kvmt_status_;   \
  } while (false)

// `lhs = value of rexpr` (an absl::StatusOr), or returns its error status.
#define KVMT_ASSIGN_OR_RETURN(lhs, rexpr) \
  KVMT_ASSIGN_OR_RETURN_IMPL(KVMT_STATUS_CONCAT(kvmt_statusor_, __LINE__), lhs, rexpr)
#define KVMT_ASSIGN_OR_RETURN_IMPL(statusor, lhs, rexpr) \
  auto statusor = (rexpr);                               \
  if (!statusor.ok()) return statusor.status();          \
  lhs = std::move(statusor).value()
