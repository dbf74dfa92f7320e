// A read-only memory map of a whole file. Move-only; unmaps on destruction.
#pragma once

#include "core/status.h"

#include <cstddef>
#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <string_view>

namespace tandem {

class MappedFile {
 public:
  MappedFile() = default;
  MappedFile(MappedFile&& other) noexcept;
  MappedFile& operator=(MappedFile&& other) noexcept;
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;
  ~MappedFile();

  // Maps PATH read-only. An empty file maps to an empty span.
  static Result<MappedFile> open(const std::string& path);

  std::span<const uint8_t> bytes() const { return {data_, size_}; }
  size_t size() const { return size_; }

  // Replaces the file's pages under bytes() with a private copy on 2 MiB
  // pages, at the same address (every pointer into the file stays valid;
  // the bytes stay read-only). Why: a forward pass streams all weights per
  // token, and on 4 KiB page-cache pages the TLB misses cost a third of
  // decode speed on a VM (Qwen3-0.6B Q8_0, Zen 5: 42 -> 65 tokens/s).
  // Reads the file in chunks of 64 MiB, calling PROGRESS(done, total).
  // On an error the mapping is left as it was.
  Status make_resident(const std::function<void(uint64_t done, uint64_t total)>& progress);
  bool resident() const { return resident_; }
  // The private copy of make_resident() writable (ON) or read-only again,
  // for rewriting weights in place at load (kernels/q8_pack.h). Errors
  // before make_resident(): the file's own pages are never written.
  Status set_writable(bool on);

  // Which file a mapping is of: make_resident() copies only that file.
  struct Identity {
    uint64_t device = 0, inode = 0;
    int64_t mtime_ns = 0;
    bool operator==(const Identity&) const = default;
  };

 private:
  const uint8_t* data_ = nullptr;
  size_t size_ = 0;
  size_t reserved_ = 0;  // the address range owned from data_: size_ rounded up to 2 MiB
  std::string path_;
  Identity identity_;  // at open()
  bool resident_ = false;
};

// Brings BYTES (a part of a mapping) into memory ahead of use, in chunks of
// 64 MiB, calling PROGRESS(done, total) after each: the first request to a
// big model then does not wait for the disk page by page.
void page_in(std::span<const uint8_t> bytes, const std::function<void(uint64_t done, uint64_t total)>& progress);

// Reads a whole file into a string (for small text files: JSON, fixtures).
Result<std::string> read_file(const std::string& path);

// Writes DATA to PATH atomically: a temporary file in the same folder,
// fsync, then rename (then fsync of the folder, so the rename is durable),
// so readers never see a half-written file. A crash may leave the temporary
// file, named PATH + ".tmp." + pid, behind.
Status write_file_atomic(const std::string& path, std::span<const uint8_t> data);
// The same for data in several parts (header, body, ...) written in order.
Status write_file_atomic(const std::string& path, std::span<const std::span<const uint8_t>> parts);
// The same for text (JSON, SVG, configs).
Status write_text_atomic(const std::string& path, std::string_view text);

}  // namespace tandem
