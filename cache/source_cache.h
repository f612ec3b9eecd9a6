// SourceCache: a bounded LRU of EncodedSources keyed by the source ids, so a segment seen again
// (repeated UI strings, retries, several prefixes or options for one source) skips the encoder.
// Exact hits only. One per model. Entries hold pool blocks; the pool may ask for idle entries
// back when it runs short (EvictIdle). Thread-safe.
#pragma once

#include <cstdint>
#include <list>
#include <memory>
#include <mutex>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "cache/encoded_source.h"

namespace kvmt {

struct SourceCacheStats {
  int64_t entries = 0;
  int64_t bytes = 0;  // K/V blocks and encoder outputs of the entries.
  int64_t hits = 0;
  int64_t misses = 0;
  int64_t max_bytes = 0;
  double hit_rate() const {
    return hits + misses == 0 ? 0.0 : static_cast<double>(hits) / static_cast<double>(hits + misses);
  }
};

class SourceCache {
 public:
  // max_bytes 0 disables the cache: Lookup always misses and Insert keeps nothing.
  explicit SourceCache(int64_t max_bytes);
  ~SourceCache();

  std::shared_ptr<const EncodedSource> Lookup(const std::vector<int32_t>& source_ids);
  // Keeps `source`, evicting least recently used entries beyond the byte limit.
  void Insert(const std::vector<int32_t>& source_ids, std::shared_ptr<const EncodedSource> source);
  // Drops the least recently used entry that nobody else holds; false when there is none.
  bool EvictIdle();
  void Clear();
  SourceCacheStats stats() const;

 private:
  struct Entry {
    std::vector<int32_t> ids;
    std::shared_ptr<const EncodedSource> source;
    int64_t bytes;
  };
  using List = std::list<Entry>;

  void EraseLocked(List::iterator it, std::vector<std::shared_ptr<const EncodedSource>>& dropped);

  const int64_t max_bytes_;
  mutable std::mutex mutex_;
  List lru_;  // Most recent first.
  absl::flat_hash_map<std::vector<int32_t>, List::iterator> index_;
  int64_t bytes_ = 0;
  int64_t hits_ = 0;
  int64_t misses_ = 0;
};

}  // namespace kvmt
