#include "cache/source_cache.h"

namespace kvmt {
namespace {

int64_t EntryBytes(const EncodedSource& source) {
  return source.kv_bytes() + source.output().size() * static_cast<int64_t>(sizeof(float));
}

}  // namespace

SourceCache::SourceCache(int64_t max_bytes) : max_bytes_(max_bytes) {}

SourceCache::~SourceCache() = default;

std::shared_ptr<const EncodedSource> SourceCache::Lookup(const std::vector<int32_t>& source_ids) {
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = index_.find(source_ids);
  if (it == index_.end()) {
    ++misses_;
    return nullptr;
  }
  ++hits_;
  lru_.splice(lru_.begin(), lru_, it->second);
  return it->second->source;
}

void SourceCache::EraseLocked(List::iterator it,
                              std::vector<std::shared_ptr<const EncodedSource>>& dropped) {
  bytes_ -= it->bytes;
  index_.erase(it->ids);
  dropped.push_back(std::move(it->source));
  lru_.erase(it);
}

void SourceCache::Insert(const std::vector<int32_t>& source_ids,
                         std::shared_ptr<const EncodedSource> source) {
  const int64_t bytes = EntryBytes(*source);
  // Sources are destroyed (their blocks released to the pool) outside the lock.
  std::vector<std::shared_ptr<const EncodedSource>> dropped;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (bytes > max_bytes_ || index_.contains(source_ids)) return;
    while (bytes_ + bytes > max_bytes_ && !lru_.empty()) EraseLocked(std::prev(lru_.end()), dropped);
    lru_.push_front(Entry{source_ids, std::move(source), bytes});
    index_.emplace(source_ids, lru_.begin());
    bytes_ += bytes;
  }
}

bool SourceCache::EvictIdle() {
  std::vector<std::shared_ptr<const EncodedSource>> dropped;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    for (auto it = lru_.rbegin(); it != lru_.rend(); ++it) {
      if (it->source.use_count() == 1) {
        EraseLocked(std::prev(it.base()), dropped);
        break;
      }
    }
  }
  return !dropped.empty();
}

void SourceCache::Clear() {
  std::vector<std::shared_ptr<const EncodedSource>> dropped;
  std::lock_guard<std::mutex> lock(mutex_);
  while (!lru_.empty()) EraseLocked(lru_.begin(), dropped);
}

SourceCacheStats SourceCache::stats() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return SourceCacheStats{static_cast<int64_t>(lru_.size()), bytes_, hits_, misses_, max_bytes_};
}

}  // namespace kvmt
