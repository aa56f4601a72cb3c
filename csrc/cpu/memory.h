// Allocation of the large per-comparison arrays: 2 MiB aligned and, on Linux, backed
// by transparent huge pages, which cuts page faults on first touch by 512x and TLB
// misses on the random gathers (Newton 1M/10M, repeated solves, min of 5: 1.37 and
// 1.54 s, 1.68 and 1.63 s without; medians 1.69 and 1.63 s, 1.71 and 1.72 s; wall clock,
// two alternating runs: a small gain), not zeroed on resize(), and
// kept for the next solve when freed (up to kBlockCacheBytes): the kernel zeroes
// every fresh page, which measured 12-18% of a 1M-item solve on the 2-core VM (perf,
// commit 97cc680).
#pragma once

#include <cstddef>
#include <cstdlib>
#include <deque>
#include <mutex>
#include <unordered_map>
#include <new>
#include <utility>
#include <vector>

#ifdef __linux__
#include <sys/mman.h>
#endif

namespace pycomp {
namespace cpu {

constexpr std::size_t kHugePage = std::size_t(1) << 21;
// The most freed memory kept for reuse, process-wide.
constexpr std::size_t kBlockCacheBytes = std::size_t(1) << 30;

// Freed blocks of at least kHugePage bytes, handed back to later allocations: each
// takes the smallest cached block that holds it and wastes at most half of it. The
// oldest are freed first when the cache is full. Thread-safe.
class BlockCache {
 public:
  static BlockCache& instance() {
    static BlockCache cache;
    return cache;
  }
  // A block of at least `bytes` (a multiple of kHugePage): from the cache, or fresh.
  void* allocate(std::size_t bytes) {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      auto best = free_.end();
      for (auto it = free_.begin(); it != free_.end(); ++it) {
        if (it->first >= bytes && it->first <= 2 * bytes && (best == free_.end() || it->first < best->first)) best = it;
      }
      if (best != free_.end()) {
        void* p = best->second;
        in_use_[p] = best->first;
        cached_ -= best->first;
        free_.erase(best);
        return p;
      }
    }
    void* p = nullptr;
    if (posix_memalign(&p, kHugePage, bytes) != 0) throw std::bad_alloc();
#ifdef __linux__
    madvise(p, bytes, MADV_HUGEPAGE);
#endif
    std::lock_guard<std::mutex> lock(mutex_);
    in_use_[p] = bytes;
    return p;
  }
  // Takes back a block from allocate(): kept for reuse unless larger than the cache.
  void release(void* p) {
    std::lock_guard<std::mutex> lock(mutex_);
    const auto it = in_use_.find(p);
    const std::size_t bytes = it->second;
    in_use_.erase(it);
    if (bytes > kBlockCacheBytes) {
      std::free(p);
      return;
    }
    while (cached_ + bytes > kBlockCacheBytes) {
      std::free(free_.front().second);
      cached_ -= free_.front().first;
      free_.pop_front();
    }
    free_.emplace_back(bytes, p);
    cached_ += bytes;
  }
  // Frees every cached block; returns how many bytes.
  std::size_t release_cached() {
    std::lock_guard<std::mutex> lock(mutex_);
    const std::size_t freed = cached_;
    for (auto& b : free_) std::free(b.second);
    free_.clear();
    cached_ = 0;
    return freed;
  }
  std::size_t cached_bytes() {
    std::lock_guard<std::mutex> lock(mutex_);
    return cached_;
  }
  ~BlockCache() { release_cached(); }

 private:
  std::mutex mutex_;
  std::deque<std::pair<std::size_t, void*>> free_;  // (bytes, block), oldest first
  std::unordered_map<void*, std::size_t> in_use_;    // block -> bytes
  std::size_t cached_ = 0;
};

// Cached = false: freed straight back to the system (for short-lived arrays, which
// would otherwise stay resident beside the ones that replace them).
template <class T, bool Cached = true>
struct HugePageAllocator {
  using value_type = T;
  template <class U>
  struct rebind {
    using other = HugePageAllocator<U, Cached>;
  };
  HugePageAllocator() = default;
  template <class U>
  HugePageAllocator(const HugePageAllocator<U, Cached>&) {}

  T* allocate(std::size_t count) {
    const std::size_t bytes = count * sizeof(T);
    if (bytes < kHugePage) {
      void* p = nullptr;
      if (posix_memalign(&p, 64, bytes == 0 ? 64 : bytes) != 0) throw std::bad_alloc();
      return static_cast<T*>(p);
    }
    const std::size_t rounded = (bytes + kHugePage - 1) & ~(kHugePage - 1);
    if (Cached) return static_cast<T*>(BlockCache::instance().allocate(rounded));
    void* p = nullptr;
    if (posix_memalign(&p, kHugePage, rounded) != 0) throw std::bad_alloc();
#ifdef __linux__
    madvise(p, rounded, MADV_HUGEPAGE);
#endif
    return static_cast<T*>(p);
  }
  void deallocate(T* p, std::size_t count) {
    const std::size_t bytes = count * sizeof(T);
    if (bytes < kHugePage || !Cached) {
      std::free(p);
      return;
    }
    BlockCache::instance().release(p);
  }
  // Default-initialises: resize() leaves trivial elements unwritten instead of zeroing
  // arrays that the caller fills anyway.
  template <class U, class... Args>
  void construct(U* p, Args&&... args) {
    if constexpr (sizeof...(Args) == 0) {
      ::new (static_cast<void*>(p)) U;
    } else {
      ::new (static_cast<void*>(p)) U(std::forward<Args>(args)...);
    }
  }
  template <class U>
  bool operator==(const HugePageAllocator<U, Cached>&) const {
    return true;
  }
  template <class U>
  bool operator!=(const HugePageAllocator<U, Cached>&) const {
    return false;
  }
};

template <class T>
using big_vector = std::vector<T, HugePageAllocator<T>>;
// A big_vector whose memory goes back to the system when it is freed.
template <class T>
using scratch_vector = std::vector<T, HugePageAllocator<T, false>>;

}  // namespace cpu
}  // namespace pycomp
