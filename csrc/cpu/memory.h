// Allocation of the large per-comparison arrays: 2 MiB aligned and, on Linux, backed
// by transparent huge pages, which cuts page faults on first touch by 512x (a
// measurable share of a solve's set-up on large inputs), and not zeroed on resize().
#pragma once

#include <cstddef>
#include <cstdlib>
#include <new>
#include <utility>
#include <vector>

#ifdef __linux__
#include <sys/mman.h>
#endif

namespace pycomp {
namespace cpu {

template <class T>
struct HugePageAllocator {
  using value_type = T;
  HugePageAllocator() = default;
  template <class U>
  HugePageAllocator(const HugePageAllocator<U>&) {}

  T* allocate(std::size_t count) {
    constexpr std::size_t huge = std::size_t(1) << 21;
    const std::size_t bytes = count * sizeof(T);
    const std::size_t align = bytes >= huge ? huge : 64;
    void* p = nullptr;
    if (posix_memalign(&p, align, bytes == 0 ? align : bytes) != 0) throw std::bad_alloc();
#ifdef __linux__
    if (bytes >= huge) madvise(p, (bytes + huge - 1) & ~(huge - 1), MADV_HUGEPAGE);
#endif
    return static_cast<T*>(p);
  }
  void deallocate(T* p, std::size_t) { std::free(p); }
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
