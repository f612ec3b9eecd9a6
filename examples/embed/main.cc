// kvmt-embed-example MODEL_DIR: translates the lines of standard input with the kvmt library,
// twice — once in a single call, once with a callback per finished segment from two threads
// sharing the Translator — and prints "<line number>\t<translation>" in input order.
#include <cstdio>
#include <iostream>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "kvmt/kvmt.h"

int main(int argc, char** argv) {
  if (argc != 2) {
    std::cerr << "usage: kvmt-embed-example MODEL_DIR < lines\n";
    return 2;
  }
  kvmt::api::LoadOptions load;
  load.threads = 1;
  absl::StatusOr<std::unique_ptr<kvmt::api::Translator>> translator =
      kvmt::api::Translator::Load(argv[1], load);
  if (!translator.ok()) {
    std::cerr << "cannot load the model: " << translator.status() << "\n";
    return 1;
  }
  const kvmt::api::ModelInfo& info = (*translator)->info();
  std::cerr << "loaded " << info.format << " model, " << info.weight_bytes / 1024
            << " KiB of weights, " << info.cache_memory_bytes / (1024 * 1024)
            << " MiB of K/V cache\n";

  std::vector<std::string> lines;
  for (std::string line; std::getline(std::cin, line);) lines.push_back(line);

  // 1. One synchronous call.
  absl::StatusOr<std::vector<kvmt::api::SegmentResult>> results =
      (*translator)->TranslateTexts(lines);
  if (!results.ok()) {
    std::cerr << "translation failed: " << results.status() << "\n";
    return 1;
  }

  // 2. The same lines split between two threads, results arriving by callback.
  std::vector<std::string> streamed(lines.size());
  std::mutex mutex;
  std::vector<absl::Status> statuses(2);
  std::vector<std::thread> threads;
  for (size_t t = 0; t < 2; ++t) {
    threads.emplace_back([&, t] {
      std::vector<kvmt::api::Segment> segments;
      std::vector<size_t> line_of;
      for (size_t i = t; i < lines.size(); i += 2) {
        segments.push_back(kvmt::api::Segment{.text = lines[i]});
        line_of.push_back(i);
      }
      statuses[t] =
          (*translator)
              ->Translate(segments, {}, [&](size_t index, kvmt::api::SegmentResult result) {
                const std::lock_guard<std::mutex> lock(mutex);
                streamed[line_of[index]] = result.hypotheses.at(0).text;
              });
    });
  }
  for (std::thread& thread : threads) thread.join();
  for (const absl::Status& status : statuses) {
    if (!status.ok()) {
      std::cerr << "translation failed: " << status << "\n";
      return 1;
    }
  }

  for (size_t i = 0; i < lines.size(); ++i) {
    const std::string& text = (*results)[i].hypotheses.at(0).text;
    if (text != streamed[i]) {
      std::cerr << "line " << i + 1 << ": the two calls disagree: '" << text << "' vs '"
                << streamed[i] << "'\n";
      return 1;
    }
    std::cout << i + 1 << "\t" << text << "\n";
  }
  return 0;
}
