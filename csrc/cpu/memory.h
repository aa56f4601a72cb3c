// Allocation of the large per-comparison arrays: 2 MiB aligned and, on Linux, backed
// by transparent huge pages, which cuts page faults on first touch by 512x (a
// measurable share of a solve's set-up on large inputs), not zeroed on resize(), and
// kept for the next solve when freed (up to kBlockCacheBytes): the kernel zeroes
// every fresh page, which measured 12-18% of a 1M-item solve on the 2-core VM.
#pragma once

#include <cstddef>
#include <cstdlib>
#include <deque>
#include <mutex>
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

// Freed blocks of at least kHugePage bytes (sizes rounded up to kHugePage), handed
// back to an allocation of the same rounded size; the oldest are freed first when
// the cache is full. Thread-safe.
class BlockCache {
 public:
  static BlockCache& instance() {
    static BlockCache cache;
    return cache;
  }
  // A cached block of exactly `bytes` (a multiple of kHugePage), or nullptr.
  void* take(std::size_t bytes) {
    std::lock_guard<std::mutex> lock(mutex_);
    for (auto it = blocks_.rbegin(); it != blocks_.rend(); ++it) {
      if (it->first == bytes) {
        void* p = it->second;
        blocks_.erase(std::next(it).base());
        cached_ -= bytes;
        return p;
      }
    }
    return nullptr;
  }
  // Keeps p (of `bytes`, a multiple of kHugePage) for reuse, or frees it when it is
  // larger than the whole cache.
  void give(void* p, std::size_t bytes) {
    if (bytes > kBlockCacheBytes) {
      std::free(p);
      return;
    }
    std::lock_guard<std::mutex> lock(mutex_);
    while (cached_ + bytes > kBlockCacheBytes) {
      std::free(blocks_.front().second);
      cached_ -= blocks_.front().first;
      blocks_.pop_front();
    }
    blocks_.emplace_back(bytes, p);
    cached_ += bytes;
  }
  // Frees every cached block; returns how many bytes.
  std::size_t release() {
    std::lock_guard<std::mutex> lock(mutex_);
    const std::size_t freed = cached_;
    for (auto& b : blocks_) std::free(b.second);
    blocks_.clear();
    cached_ = 0;
    return freed;
  }
  std::size_t cached_bytes() {
    std::lock_guard<std::mutex> lock(mutex_);
    return cached_;
  }
  ~BlockCache() { release(); }

 private:
  std::mutex mutex_;
  std::deque<std::pair<std::size_t, void*>> blocks_;  // oldest first
  std::size_t cached_ = 0;
};

template <class T>
struct HugePageAllocator {
  using value_type = T;
  HugePageAllocator() = default;
  template <class U>
  HugePageAllocator(const HugePageAllocator<U>&) {}

  T* allocate(std::size_t count) {
    const std::size_t bytes = count * sizeof(T);
    if (bytes < kHugePage) {
      void* p = nullptr;
      if (posix_memalign(&p, 64, bytes == 0 ? 64 : bytes) != 0) throw std::bad_alloc();
      return static_cast<T*>(p);
    }
    const std::size_t rounded = (bytes + kHugePage - 1) & ~(kHugePage - 1);
    if (void* cached = BlockCache::instance().take(rounded)) return static_cast<T*>(cached);
    void* p = nullptr;
    if (posix_memalign(&p, kHugePage, rounded) != 0) throw std::bad_alloc();
#ifdef __linux__
    madvise(p, rounded, MADV_HUGEPAGE);
#endif
    return static_cast<T*>(p);
  }
  void deallocate(T* p, std::size_t count) {
    const std::size_t bytes = count * sizeof(T);
    if (bytes < kHugePage) {
      std::free(p);
      return;
    }
    BlockCache::instance().give(p, (bytes + kHugePage - 1) & ~(kHugePage - 1));
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
  bool operator==(const HugePageAllocator<U>&) const {
    return true;
  }
  template <class U>
  bool operator!=(const HugePageAllocator<U>&) const {
    return false;
  }
};

template <class T>
using big_vector = std::vector<T, HugePageAllocator<T>>;

}  // namespace cpu
}  // namespace pycomp
