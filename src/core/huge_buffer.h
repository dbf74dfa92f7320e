// A large zero-initialised anonymous memory region backed by transparent
// huge pages where the kernel allows them (madvise(MADV_HUGEPAGE)).
//
// Why: the first touch of each 4 KiB page is a page fault, and on virtual
// machines a fault is expensive (12.7 us per page measured on a 2-vCPU
// Zen 5 VM: 256 MiB took 835 ms to touch, 17 ms with 2 MiB pages). The KV
// pool is written into fresh pages all the time (every new block of a
// prefill, every block read back from disk), so 4 KiB faults were most of
// a disk-tier resume.
#pragma once

#include <cstddef>
#include <cstdint>

namespace tandem {

inline constexpr size_t kHugePageBytes = size_t{2} << 20;

// BYTES rounded up to whole huge pages.
inline constexpr size_t round_up_to_huge_pages(size_t bytes) {
  return (bytes + kHugePageBytes - 1) / kHugePageBytes * kHugePageBytes;
}

// Maps BYTES (a multiple of kHugePageBytes) of private anonymous memory
// that starts at a 2 MiB boundary (only aligned 2 MiB ranges can become
// huge pages), with protection PROT; nullptr on failure. No advice given.
uint8_t* map_huge_aligned(size_t bytes, int prot);

class HugeBuffer {
 public:
  HugeBuffer() = default;
  HugeBuffer(HugeBuffer&& other) noexcept;
  HugeBuffer& operator=(HugeBuffer&& other) noexcept;
  HugeBuffer(const HugeBuffer&) = delete;
  HugeBuffer& operator=(const HugeBuffer&) = delete;
  ~HugeBuffer();

  // Reserves BYTES (address space only: pages arrive on first touch, read
  // as zeros). Empty on failure.
  static HugeBuffer allocate(size_t bytes);

  uint8_t* data() const { return data_; }
  size_t size() const { return size_; }
  explicit operator bool() const { return data_ != nullptr; }
  // Gives up the region without unmapping it (it was moved elsewhere, e.g.
  // with mremap).
  void release() {
    data_ = nullptr;
    size_ = mapped_ = 0;
  }

 private:
  uint8_t* data_ = nullptr;
  size_t size_ = 0;    // what the caller asked for
  size_t mapped_ = 0;  // rounded up to whole huge pages
};

}  // namespace tandem
