#include "core/mapped_file.h"

#include "core/huge_buffer.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <utility>

namespace tandem {

namespace {

MappedFile::Identity identity_of(const struct stat& st) {
  return {static_cast<uint64_t>(st.st_dev), static_cast<uint64_t>(st.st_ino),
          static_cast<int64_t>(st.st_mtim.tv_sec) * 1'000'000'000 + st.st_mtim.tv_nsec};
}

}  // namespace

MappedFile::MappedFile(MappedFile&& other) noexcept
    : data_(std::exchange(other.data_, nullptr)),
      size_(std::exchange(other.size_, 0)),
      reserved_(std::exchange(other.reserved_, 0)),
      path_(std::move(other.path_)),
      identity_(other.identity_),
      resident_(std::exchange(other.resident_, false)) {}

MappedFile& MappedFile::operator=(MappedFile&& other) noexcept {
  if (this != &other) {
    if (data_ != nullptr) munmap(const_cast<uint8_t*>(data_), reserved_);
    data_ = std::exchange(other.data_, nullptr);
    size_ = std::exchange(other.size_, 0);
    reserved_ = std::exchange(other.reserved_, 0);
    path_ = std::move(other.path_);
    identity_ = other.identity_;
    resident_ = std::exchange(other.resident_, false);
  }
  return *this;
}

MappedFile::~MappedFile() {
  if (data_ != nullptr) munmap(const_cast<uint8_t*>(data_), reserved_);
}

Result<MappedFile> MappedFile::open(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return Status::errorf("cannot open {}: {}", path, std::strerror(errno));
  struct stat st {};
  if (fstat(fd, &st) != 0) {
    int err = errno;
    ::close(fd);
    return Status::errorf("cannot stat {}: {}", path, std::strerror(err));
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    return Status::errorf("{} is not a regular file", path);
  }
  MappedFile file;
  file.path_ = path;
  file.identity_ = identity_of(st);
  file.size_ = static_cast<size_t>(st.st_size);
  if (file.size_ > 0) {
    // At a 2 MiB boundary, with the rest of the last 2 MiB reserved, so
    // make_resident() can put huge pages under the same addresses.
    const size_t reserve = round_up_to_huge_pages(file.size_);
    uint8_t* base = map_huge_aligned(reserve, PROT_NONE);
    void* p = base == nullptr ? MAP_FAILED : mmap(base, file.size_, PROT_READ, MAP_PRIVATE | MAP_FIXED, fd, 0);
    if (p == MAP_FAILED) {
      int err = errno;
      if (base != nullptr) ::munmap(base, reserve);
      ::close(fd);
      return Status::errorf("cannot map {}: {}", path, std::strerror(err));
    }
    file.data_ = base;
    file.reserved_ = reserve;
  }
  ::close(fd);
  return file;
}

Status MappedFile::make_resident(const std::function<void(uint64_t done, uint64_t total)>& progress) {
  if (resident_ || size_ == 0) return {};
  int fd = ::open(path_.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return Status::errorf("cannot open {}: {}", path_, std::strerror(errno));
  struct stat st {};
  if (fstat(fd, &st) != 0 || static_cast<size_t>(st.st_size) != size_ || identity_of(st) != identity_) {
    ::close(fd);
    return Status::errorf("{} changed since it was opened", path_);
  }
  HugeBuffer copy = HugeBuffer::allocate(reserved_);
  if (!copy) {
    ::close(fd);
    return Status::errorf("cannot allocate {} MiB for {}", reserved_ >> 20, path_);
  }
  constexpr size_t kChunk = size_t{64} << 20;
  for (size_t at = 0; at < size_;) {
    const ssize_t n = ::pread(fd, copy.data() + at, std::min(kChunk, size_ - at), static_cast<off_t>(at));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      const int err = n < 0 ? errno : EIO;
      ::close(fd);
      return Status::errorf("cannot read {}: {}", path_, std::strerror(err));
    }
    at += static_cast<size_t>(n);
    if (progress && (at % kChunk == 0 || at == size_)) progress(at, size_);
  }
  ::close(fd);
  // Read-only like the file mapping, then moved over it in one step (the
  // old pages go; the bytes under data_ never change).
  if (::mprotect(copy.data(), reserved_, PROT_READ) != 0 ||
      ::mremap(copy.data(), reserved_, reserved_, MREMAP_MAYMOVE | MREMAP_FIXED, const_cast<uint8_t*>(data_)) ==
          MAP_FAILED) {
    return Status::errorf("cannot move {} into place: {}", path_, std::strerror(errno));
  }
  copy.release();  // its pages live at data_ now
  resident_ = true;
  return {};
}

Status MappedFile::set_writable(bool on) {
  if (!resident_) return Status::errorf("{} is not a private copy", path_);
  if (::mprotect(const_cast<uint8_t*>(data_), reserved_, on ? PROT_READ | PROT_WRITE : PROT_READ) != 0) {
    return Status::errorf("cannot change the protection of {}: {}", path_, std::strerror(errno));
  }
  return {};
}

Result<std::string> read_file(const std::string& path) {
  // read() until EOF rather than mmap: /proc and /sys files report size 0.
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return Status::errorf("cannot open {}: {}", path, std::strerror(errno));
  std::string out;
  char buf[65536];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      int err = errno;
      ::close(fd);
      return Status::errorf("cannot read {}: {}", path, std::strerror(err));
    }
    if (n == 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  return out;
}

Status write_file_atomic(const std::string& path, std::span<const uint8_t> data) {
  const std::span<const uint8_t> parts[1] = {data};
  return write_file_atomic(path, parts);
}

Status write_text_atomic(const std::string& path, std::string_view text) {
  return write_file_atomic(path, std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(text.data()), text.size()));
}

Status write_file_atomic(const std::string& path, std::span<const std::span<const uint8_t>> parts) {
  std::string tmp = path + ".tmp." + std::to_string(getpid());
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return Status::errorf("cannot create {}: {}", tmp, std::strerror(errno));
  for (const auto& data : parts) {
    size_t done = 0;
    while (done < data.size()) {
      ssize_t n = ::write(fd, data.data() + done, data.size() - done);
      if (n < 0) {
        if (errno == EINTR) continue;
        int err = errno;
        ::close(fd);
        ::unlink(tmp.c_str());
        return Status::errorf("cannot write {}: {}", tmp, std::strerror(err));
      }
      done += static_cast<size_t>(n);
    }
  }
  if (fsync(fd) != 0 || ::close(fd) != 0) {
    int err = errno;
    ::unlink(tmp.c_str());
    return Status::errorf("cannot flush {}: {}", tmp, std::strerror(err));
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    int err = errno;
    ::unlink(tmp.c_str());
    return Status::errorf("cannot rename {} to {}: {}", tmp, path, std::strerror(err));
  }
  // The rename is durable only once the folder's entry is on disk too.
  const size_t slash = path.rfind('/');
  const std::string folder = slash == std::string::npos ? "." : slash == 0 ? "/" : path.substr(0, slash);
  int dfd = ::open(folder.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd < 0) return Status::errorf("cannot open folder {}: {}", folder, std::strerror(errno));
  const int rc = fsync(dfd);
  const int err = errno;
  ::close(dfd);
  if (rc != 0) return Status::errorf("cannot flush folder {}: {}", folder, std::strerror(err));
  return {};
}

}  // namespace tandem

namespace tandem {

void page_in(std::span<const uint8_t> bytes, const std::function<void(uint64_t done, uint64_t total)>& progress) {
  constexpr size_t kChunk = size_t{64} << 20;
  const size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  volatile uint8_t sink = 0;
  for (size_t at = 0; at < bytes.size(); at += kChunk) {
    const size_t n = std::min(kChunk, bytes.size() - at);
    // madvise wants a page-aligned start.
    const uintptr_t start = reinterpret_cast<uintptr_t>(bytes.data() + at) & ~(uintptr_t{page} - 1);
    const size_t len = reinterpret_cast<uintptr_t>(bytes.data() + at + n) - start;
    (void)madvise(reinterpret_cast<void*>(start), len, MADV_WILLNEED);
    uint8_t acc = 0;
    for (size_t i = 0; i < n; i += page) acc ^= bytes[at + i];
    sink = sink ^ acc;
    if (progress) progress(at + n, bytes.size());
  }
  (void)sink;
}

}  // namespace tandem
