#include "decoder/search/search.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <random>

#include "absl/container/flat_hash_set.h"
#include "core/ops.h"

namespace kvmt {
namespace {

constexpr float kMinusInf = -std::numeric_limits<float>::infinity();

struct Hypothesis {
  int segment = 0;
  std::vector<int32_t> tokens;
  float cumulative = 0.0f;
};

struct Finished {
  std::vector<int32_t> tokens;
  float score = 0.0f;
};

struct Candidate {
  float score;
  int64_t flat;  // Row within the segment's group * vocab + token.
};

// Best first; ties: lower flattened index first (docs/DECODING.md).
bool Better(const Candidate& a, const Candidate& b) {
  return a.score > b.score || (a.score == b.score && a.flat < b.flat);
}

void ApplyRepetitionPenalty(const std::vector<int32_t>& tokens, float penalty, float* logits) {
  absl::flat_hash_set<int32_t> seen(tokens.begin(), tokens.end());
  for (int32_t id : seen) logits[id] = logits[id] < 0 ? logits[id] * penalty : logits[id] / penalty;
}

void BlockRepeatedNgrams(const std::vector<int32_t>& tokens, int n, float* log_probs) {
  const int length = static_cast<int>(tokens.size());
  if (n <= 0 || length < n - 1) return;
  // The last n-1 tokens; every earlier occurrence bans the token that followed it.
  for (int start = 0; start + n - 1 < length; ++start) {
    bool match = true;
    for (int j = 0; j < n - 1 && match; ++j) match = tokens[start + j] == tokens[length - n + 1 + j];
    if (match) log_probs[tokens[start + n - 1]] = kMinusInf;
  }
}

// Masks 3-5 of docs/DECODING.md on a row of log-probabilities.
void ApplyMasks(const Hypothesis& hypothesis, int step, const SearchOptions& options,
                const SearchVocabulary& vocabulary, float* log_probs) {
  for (int32_t id : vocabulary.suppressed_ids) log_probs[id] = kMinusInf;
  if (step < options.min_decoding_length) log_probs[vocabulary.eos_id] = kMinusInf;
  BlockRepeatedNgrams(hypothesis.tokens, options.no_repeat_ngram_size, log_probs);
}

float NormalisedScore(float cumulative, size_t length, float length_penalty) {
  if (length_penalty == 0.0f || length == 0) return cumulative;
  return cumulative / std::pow(static_cast<float>(length), length_penalty);
}

// Keeps the `count` best (score, flat) pairs of a row in `heap` (a min-heap on Better).
void TopOfRow(const float* row, int64_t vocab, float offset, int64_t flat_base, size_t count,
              std::vector<Candidate>& heap) {
  auto worse_on_top = [](const Candidate& a, const Candidate& b) { return Better(a, b); };
  for (int64_t v = 0; v < vocab; ++v) {
    if (row[v] == kMinusInf) continue;
    const Candidate candidate{offset + row[v], flat_base + v};
    if (heap.size() < count) {
      heap.push_back(candidate);
      std::push_heap(heap.begin(), heap.end(), worse_on_top);
    } else if (Better(candidate, heap.front())) {
      std::pop_heap(heap.begin(), heap.end(), worse_on_top);
      heap.back() = candidate;
      std::push_heap(heap.begin(), heap.end(), worse_on_top);
    }
  }
}

int32_t Sample(const float* logits, const float* log_probs, int64_t vocab,
               const SearchOptions& options, std::mt19937_64& generator) {
  std::vector<std::pair<float, int32_t>> allowed;
  for (int64_t v = 0; v < vocab; ++v) {
    if (log_probs[v] != kMinusInf) {
      allowed.emplace_back(logits[v] / options.sampling_temperature, static_cast<int32_t>(v));
    }
  }
  auto by_logit = [](const auto& a, const auto& b) {
    return a.first > b.first || (a.first == b.first && a.second < b.second);
  };
  size_t k = allowed.size();
  if (options.sampling_topk > 0) k = std::min<size_t>(k, options.sampling_topk);
  std::partial_sort(allowed.begin(), allowed.begin() + k, allowed.end(), by_logit);
  allowed.resize(k);
  const float max_logit = allowed.front().first;
  float total = 0.0f;
  for (auto& [logit, id] : allowed) total += (logit = std::exp(logit - max_logit));
  std::uniform_real_distribution<float> uniform(0.0f, total);
  float draw = uniform(generator);
  for (const auto& [weight, id] : allowed) {
    if (draw < weight) return id;
    draw -= weight;
  }
  return allowed.back().second;
}

}  // namespace

absl::StatusOr<std::vector<SearchResult>> Search(StepModel& model,
                                                 const std::vector<std::vector<int32_t>>& prefixes,
                                                 const SearchOptions& options,
                                                 const SearchVocabulary& vocabulary) {
  const int num_segments = static_cast<int>(prefixes.size());
  const int64_t vocab = vocabulary.size;
  const int beam = std::max(1, options.beam_size);
  const bool sampling = beam == 1 && options.sampling_topk != 1;
  std::mt19937_64 generator(options.seed == 0 ? 5489u : options.seed);

  std::vector<std::vector<Finished>> finished(num_segments);
  std::vector<Hypothesis> alive(num_segments);
  for (int s = 0; s < num_segments; ++s) alive[s].segment = s;

  Tensor logits;
  std::vector<int32_t> inputs;
  std::vector<Candidate> heap;
  std::vector<Candidate> candidates;
  for (int step = 0; !alive.empty(); ++step) {
    inputs.clear();
    for (const Hypothesis& h : alive) {
      inputs.push_back(h.tokens.empty() ? vocabulary.start_id : h.tokens.back());
    }
    if (absl::Status status = model.Logits(inputs, logits); !status.ok()) return status;

    const bool last_step = step + 1 >= options.max_decoding_length;
    std::vector<Hypothesis> next;
    std::vector<int32_t> parents;
    auto finish = [&](Hypothesis&& h) {
      const float score = NormalisedScore(h.cumulative, h.tokens.size(), options.length_penalty);
      finished[h.segment].push_back(Finished{std::move(h.tokens), score});
    };
    auto extend = [&](int parent, int32_t token, float log_prob) {
      Hypothesis child{alive[parent].segment, alive[parent].tokens,
                       alive[parent].cumulative + log_prob};
      child.tokens.push_back(token);
      if (token == vocabulary.eos_id || last_step) {
        finish(std::move(child));
      } else {
        next.push_back(std::move(child));
        parents.push_back(parent);
      }
    };

    for (size_t begin = 0; begin < alive.size();) {
      const int segment = alive[begin].segment;
      size_t end = begin;
      while (end < alive.size() && alive[end].segment == segment) ++end;
      const std::vector<int32_t>& prefix = prefixes[segment];
      const bool forced = step < static_cast<int>(prefix.size());

      for (size_t h = begin; h < end; ++h) {
        float* row = logits.data() + h * vocab;
        if (options.repetition_penalty != 1.0f) {
          ApplyRepetitionPenalty(alive[h].tokens, options.repetition_penalty, row);
        }
        if (sampling && !forced) {
          std::vector<float> log_probs(row, row + vocab);
          LogSoftmax(log_probs.data(), vocab, log_probs.data());
          ApplyMasks(alive[h], step, options, vocabulary, log_probs.data());
          const int32_t token = Sample(row, log_probs.data(), vocab, options, generator);
          extend(static_cast<int>(h), token, log_probs[token]);
          continue;
        }
        LogSoftmax(row, vocab, row);
        if (forced) {
          extend(static_cast<int>(h), prefix[step], row[prefix[step]]);
          continue;
        }
        ApplyMasks(alive[h], step, options, vocabulary, row);
      }
      if (forced || sampling) {
        begin = end;
        continue;
      }

      // Beam step over the segment's hypotheses: the 2K best candidates, best first.
      const size_t wanted = 2 * static_cast<size_t>(beam);
      candidates.clear();
      for (size_t h = begin; h < end; ++h) {
        heap.clear();
        TopOfRow(logits.data() + h * vocab, vocab, alive[h].cumulative,
                 static_cast<int64_t>(h - begin) * vocab, wanted, heap);
        candidates.insert(candidates.end(), heap.begin(), heap.end());
      }
      std::sort(candidates.begin(), candidates.end(), Better);
      if (candidates.size() > wanted) candidates.resize(wanted);
      int kept = 0;
      for (size_t rank = 0; rank < candidates.size() && kept < beam; ++rank) {
        const int parent = static_cast<int>(begin + candidates[rank].flat / vocab);
        const int32_t token = static_cast<int32_t>(candidates[rank].flat % vocab);
        const float log_prob = candidates[rank].score - alive[parent].cumulative;
        if (token == vocabulary.eos_id) {
          if (rank < static_cast<size_t>(beam)) extend(parent, token, log_prob);
          continue;
        }
        extend(parent, token, log_prob);
        ++kept;
      }
      begin = end;
    }

    // Segments with K finished hypotheses stop; their remaining beams leave the batch.
    std::vector<Hypothesis> still_alive;
    std::vector<int32_t> still_parents;
    for (size_t i = 0; i < next.size(); ++i) {
      if (static_cast<int>(finished[next[i].segment].size()) >= beam) continue;
      still_alive.push_back(std::move(next[i]));
      still_parents.push_back(parents[i]);
    }
    alive = std::move(still_alive);
    if (!alive.empty()) {
      if (absl::Status status = model.Reorder(still_parents); !status.ok()) return status;
    }
  }

  std::vector<SearchResult> results(num_segments);
  for (int s = 0; s < num_segments; ++s) {
    std::stable_sort(finished[s].begin(), finished[s].end(),
                     [](const Finished& a, const Finished& b) { return a.score > b.score; });
    const size_t count = std::min<size_t>(finished[s].size(), options.num_hypotheses);
    for (size_t i = 0; i < count; ++i) {
      SearchHypothesis hypothesis{std::move(finished[s][i].tokens), finished[s][i].score};
      if (!options.return_end_token && !hypothesis.ids.empty() &&
          hypothesis.ids.back() == vocabulary.eos_id) {
        hypothesis.ids.pop_back();
      }
      results[s].hypotheses.push_back(std::move(hypothesis));
    }
  }
  return results;
}

}  // namespace kvmt
