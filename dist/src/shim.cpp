// The C side of metaspatial-dist: PyTorch's c10d (stores, process groups, collectives) behind
// a flat C interface that never lets a C++ exception cross into Rust. Every call that can fail
// returns 0 on success or 1 with a heap-allocated message in *err (freed by dist_free_error).

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include <ATen/ATen.h>
#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#ifdef METASPATIAL_NCCL
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#endif

namespace {

struct DistStore {
  c10::intrusive_ptr<c10d::Store> store;
};

struct DistGroup {
  c10::intrusive_ptr<c10d::Backend> backend;
  std::chrono::milliseconds timeout;
};

void set_error(char** err, const std::string& message) {
  if (err == nullptr) {
    return;
  }
  *err = static_cast<char*>(std::malloc(message.size() + 1));
  if (*err != nullptr) {
    std::memcpy(*err, message.c_str(), message.size() + 1);
  }
}

// Runs f, turning any exception into an error message.
template <typename F>
int guarded(char** err, F&& f) {
  try {
    f();
    return 0;
  } catch (const std::exception& e) {
    set_error(err, e.what());
  } catch (...) {
    set_error(err, "unknown C++ exception");
  }
  return 1;
}

// Waits for a collective, failing when it does not finish within the group's timeout.
void finish(const DistGroup* group, const c10::intrusive_ptr<c10d::Work>& work) {
  if (!work->wait(group->timeout)) {
    throw std::runtime_error("timed out after " + std::to_string(group->timeout.count()) + " ms");
  }
}

c10d::ReduceOp reduce_op(int op) {
  switch (op) {
    case 0:
      return c10d::ReduceOp::SUM;
    case 1:
      return c10d::ReduceOp::MAX;
    case 2:
      return c10d::ReduceOp::MIN;
    default:
      throw std::invalid_argument("unknown reduce operation " + std::to_string(op));
  }
}

}  // namespace

extern "C" {

void dist_free_error(char* err) { std::free(err); }

int dist_has_nccl() {
#ifdef METASPATIAL_NCCL
  return 1;
#else
  return 0;
#endif
}

int dist_tcp_store(const char* host, uint16_t port, int is_server, int world, int64_t timeout_ms,
                   const char* prefix, DistStore** out, char** err) {
  return guarded(err, [&] {
    c10d::TCPStoreOptions options;
    options.port = port;
    options.isServer = is_server != 0;
    options.numWorkers = static_cast<std::size_t>(world);
    // Every rank counts itself in (clients only add to the count); the server then waits
    // until the whole world has joined, as torch.distributed does.
    options.waitWorkers = true;
    options.timeout = std::chrono::milliseconds(timeout_ms);
    auto tcp = c10::make_intrusive<c10d::TCPStore>(std::string(host), options);
    c10::intrusive_ptr<c10d::Store> store = tcp;
    if (prefix != nullptr && prefix[0] != '\0') {
      store = c10::make_intrusive<c10d::PrefixStore>(std::string(prefix), tcp);
    }
    *out = new DistStore{store};
  });
}

void dist_store_free(DistStore* store) { delete store; }

int dist_store_set(DistStore* store, const char* key, const uint8_t* value, size_t len,
                   char** err) {
  return guarded(err, [&] {
    store->store->set(std::string(key), std::vector<uint8_t>(value, value + len));
  });
}

// Copies the value of key (waiting up to the store's timeout) into a malloc'ed buffer.
int dist_store_get(DistStore* store, const char* key, uint8_t** value, size_t* len, char** err) {
  return guarded(err, [&] {
    auto bytes = store->store->get(std::string(key));
    *len = bytes.size();
    *value = static_cast<uint8_t*>(std::malloc(bytes.empty() ? 1 : bytes.size()));
    if (*value == nullptr) {
      throw std::bad_alloc();
    }
    std::memcpy(*value, bytes.data(), bytes.size());
  });
}

void dist_free_bytes(uint8_t* value) { std::free(value); }

int dist_store_check(DistStore* store, const char* key, int* present, char** err) {
  return guarded(err, [&] { *present = store->store->check({std::string(key)}) ? 1 : 0; });
}

int dist_store_add(DistStore* store, const char* key, int64_t delta, int64_t* value,
                   char** err) {
  return guarded(err, [&] { *value = store->store->add(std::string(key), delta); });
}

// backend: 0 = Gloo, 1 = NCCL.
int dist_group_new(DistStore* store, int rank, int world, int backend, int64_t timeout_ms,
                   DistGroup** out, char** err) {
  return guarded(err, [&] {
    auto timeout = std::chrono::milliseconds(timeout_ms);
    // The group's rendezvous keys stay apart from the keys callers keep in the same store.
    c10::intrusive_ptr<c10d::Store> keys =
        c10::make_intrusive<c10d::PrefixStore>("group", store->store);
    if (backend == 0) {
      auto options = c10d::ProcessGroupGloo::Options::create(timeout);
      // The same choice as torch.distributed: an interface named by GLOO_SOCKET_IFNAME, else
      // the address this host's name resolves to (loopback when it resolves to none).
      const char* interface = std::getenv("GLOO_SOCKET_IFNAME");
      if (interface != nullptr && interface[0] != '\0') {
        options->devices.push_back(
            c10d::ProcessGroupGloo::createDeviceForInterface(std::string(interface)));
      } else {
        options->devices.push_back(c10d::ProcessGroupGloo::createDefaultDevice());
      }
      auto group =
          c10::make_intrusive<c10d::ProcessGroupGloo>(keys, rank, world, options);
      *out = new DistGroup{group, timeout};
      return;
    }
#ifdef METASPATIAL_NCCL
    if (backend == 1) {
      auto options = c10d::ProcessGroupNCCL::Options::create();
      options->timeout = timeout;
      auto group =
          c10::make_intrusive<c10d::ProcessGroupNCCL>(keys, rank, world, options);
      *out = new DistGroup{group, timeout};
      return;
    }
#endif
    throw std::invalid_argument("this build has no backend number " + std::to_string(backend));
  });
}

void dist_group_free(DistGroup* group) { delete group; }

int dist_all_reduce(DistGroup* group, at::Tensor* tensor, int op, char** err) {
  return guarded(err, [&] {
    std::vector<at::Tensor> tensors{*tensor};
    c10d::AllreduceOptions options;
    options.reduceOp = reduce_op(op);
    options.timeout = group->timeout;
    finish(group, group->backend->allreduce(tensors, options));
  });
}

int dist_broadcast(DistGroup* group, at::Tensor* tensor, int root, char** err) {
  return guarded(err, [&] {
    std::vector<at::Tensor> tensors{*tensor};
    c10d::BroadcastOptions options;
    options.rootRank = root;
    options.timeout = group->timeout;
    finish(group, group->backend->broadcast(tensors, options));
  });
}

// outputs: world tensors shaped like input, filled with every rank's input in rank order.
int dist_all_gather(DistGroup* group, at::Tensor* input, at::Tensor** outputs, int world,
                    char** err) {
  return guarded(err, [&] {
    std::vector<at::Tensor> inputs{*input};
    std::vector<std::vector<at::Tensor>> gathered(1);
    for (int r = 0; r < world; ++r) {
      gathered[0].push_back(*outputs[r]);
    }
    c10d::AllgatherOptions options;
    options.timeout = group->timeout;
    finish(group, group->backend->allgather(gathered, inputs, options));
  });
}

// inputs: world tensors shaped like output; output receives the reduction of every rank's
// inputs[rank].
int dist_reduce_scatter(DistGroup* group, at::Tensor* output, at::Tensor** inputs, int world,
                        int op, char** err) {
  return guarded(err, [&] {
    std::vector<at::Tensor> outputs{*output};
    std::vector<std::vector<at::Tensor>> scattered(1);
    for (int r = 0; r < world; ++r) {
      scattered[0].push_back(*inputs[r]);
    }
    c10d::ReduceScatterOptions options;
    options.reduceOp = reduce_op(op);
    options.timeout = group->timeout;
    finish(group, group->backend->reduce_scatter(outputs, scattered, options));
  });
}

int dist_barrier(DistGroup* group, char** err) {
  return guarded(err, [&] {
    c10d::BarrierOptions options;
    options.timeout = group->timeout;
    finish(group, group->backend->barrier(options));
  });
}

}  // extern "C"
