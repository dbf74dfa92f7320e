#include "core/huge_buffer.h"

#include <sys/mman.h>

#include <utility>

namespace tandem {
uint8_t* map_huge_aligned(size_t bytes, int prot) {
  // One huge page more than needed, so the start can be aligned to one.
  void* p = ::mmap(nullptr, bytes + kHugePageBytes, prot, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (p == MAP_FAILED) return nullptr;
  auto* raw = static_cast<uint8_t*>(p);
  auto* aligned =
      reinterpret_cast<uint8_t*>((reinterpret_cast<uintptr_t>(raw) + kHugePageBytes - 1) & ~(kHugePageBytes - 1));
  // Give back the unaligned ends.
  if (aligned != raw) ::munmap(raw, static_cast<size_t>(aligned - raw));
  const size_t tail = static_cast<size_t>(raw + bytes + kHugePageBytes - (aligned + bytes));
  if (tail != 0) ::munmap(aligned + bytes, tail);
  return aligned;
}

HugeBuffer HugeBuffer::allocate(size_t bytes) {
  HugeBuffer b;
  if (bytes == 0) return b;
  const size_t mapped = round_up_to_huge_pages(bytes);
  uint8_t* p = map_huge_aligned(mapped, PROT_READ | PROT_WRITE);
  if (p == nullptr) return b;
  // Advice only: without THP (never) the region still works with 4 KiB pages.
  ::madvise(p, mapped, MADV_HUGEPAGE);
  b.data_ = p;
  b.size_ = bytes;
  b.mapped_ = mapped;
  return b;
}

HugeBuffer::HugeBuffer(HugeBuffer&& other) noexcept
    : data_(std::exchange(other.data_, nullptr)),
      size_(std::exchange(other.size_, 0)),
      mapped_(std::exchange(other.mapped_, 0)) {}

HugeBuffer& HugeBuffer::operator=(HugeBuffer&& other) noexcept {
  if (this != &other) {
    if (data_ != nullptr) ::munmap(data_, mapped_);
    data_ = std::exchange(other.data_, nullptr);
    size_ = std::exchange(other.size_, 0);
    mapped_ = std::exchange(other.mapped_, 0);
  }
  return *this;
}

HugeBuffer::~HugeBuffer() {
  if (data_ != nullptr) ::munmap(data_, mapped_);
}

}  // namespace tandem
