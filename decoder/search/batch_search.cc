#include "decoder/search/batch_search.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "core/ops.h"

namespace kvmt {
namespace {

constexpr float kMinusInf = -std::numeric_limits<float>::infinity();

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
void ApplyMasks(const std::vector<int32_t>& tokens, const SearchOptions& options,
                const SearchVocabulary& vocabulary, float* log_probs) {
  for (int32_t id : vocabulary.suppressed_ids) log_probs[id] = kMinusInf;
  if (static_cast<int>(tokens.size()) < options.min_decoding_length) {
    log_probs[vocabulary.eos_id] = kMinusInf;
  }
  BlockRepeatedNgrams(tokens, options.no_repeat_ngram_size, log_probs);
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

struct BatchSearch::Segment {
  uint64_t id = 0;
  SearchOptions options;
  std::vector<int32_t> prefix;
  std::mt19937_64 generator;
  struct Finished {
    std::vector<int32_t> tokens;
    float score = 0.0f;
  };
  std::vector<Finished> finished;
  int beam() const { return std::max(1, options.beam_size); }
  bool sampling() const { return beam() == 1 && options.sampling_topk != 1; }

  SearchResult Result() {
    std::stable_sort(finished.begin(), finished.end(),
                     [](const Finished& a, const Finished& b) { return a.score > b.score; });
    SearchResult result;
    const size_t count = std::min<size_t>(finished.size(), options.num_hypotheses);
    for (size_t i = 0; i < count; ++i) {
      SearchHypothesis hypothesis{std::move(finished[i].tokens), finished[i].score};
      if (!options.return_end_token && !hypothesis.ids.empty() &&
          hypothesis.ids.back() == eos_id) {
        hypothesis.ids.pop_back();
      }
      result.hypotheses.push_back(std::move(hypothesis));
    }
    return result;
  }
  int32_t eos_id = 0;
};

BatchSearch::BatchSearch(StepModel& model, SearchVocabulary vocabulary)
    : model_(model), vocabulary_(std::move(vocabulary)) {}

BatchSearch::~BatchSearch() = default;

absl::Status BatchSearch::Add(uint64_t segment, std::shared_ptr<const EncodedSource> source,
                              std::vector<int32_t> prefix, const SearchOptions& options) {
  if (segments_.contains(segment)) {
    return absl::AlreadyExistsError(absl::StrCat("segment ", segment, " is already decoding"));
  }
  for (int32_t id : prefix) {
    if (id < 0 || id >= vocabulary_.size) {
      return absl::InvalidArgumentError(absl::StrCat("segment ", segment, ": prefix id ", id,
                                                     " is outside the target vocabulary"));
    }
  }
  auto state = std::make_unique<Segment>();
  state->id = segment;
  state->options = options;
  state->prefix = std::move(prefix);
  state->generator.seed(options.seed == 0 ? 5489u : options.seed);
  state->eos_id = vocabulary_.eos_id;
  model_.AddHypothesis(std::move(source));
  alive_.push_back(Hypothesis{state.get(), {}, 0.0f});
  segments_.emplace(segment, std::move(state));
  return absl::OkStatus();
}

absl::Status BatchSearch::Cancel(uint64_t segment) {
  auto it = segments_.find(segment);
  if (it == segments_.end()) {
    return absl::NotFoundError(absl::StrCat("segment ", segment, " is not decoding"));
  }
  std::vector<Hypothesis> kept;
  std::vector<int32_t> parents;
  for (size_t i = 0; i < alive_.size(); ++i) {
    if (alive_[i].segment == it->second.get()) continue;
    kept.push_back(std::move(alive_[i]));
    parents.push_back(static_cast<int32_t>(i));
  }
  alive_ = std::move(kept);
  segments_.erase(it);
  return model_.Reorder(parents);
}

absl::Status BatchSearch::Step(SearchStepOutput& output) {
  output.tokens.clear();
  output.finished.clear();
  if (alive_.empty()) return absl::OkStatus();
  const int64_t vocab = vocabulary_.size;

  std::vector<int32_t> inputs;
  inputs.reserve(alive_.size());
  for (const Hypothesis& h : alive_) {
    inputs.push_back(h.tokens.empty() ? vocabulary_.start_id : h.tokens.back());
  }
  if (absl::Status status = model_.Logits(inputs, logits_); !status.ok()) return status;

  std::vector<Hypothesis> next;
  std::vector<int32_t> parents;
  std::vector<Candidate> heap;
  std::vector<Candidate> candidates;
  std::vector<Segment*> stepped;
  for (size_t begin = 0; begin < alive_.size();) {
    Segment& segment = *alive_[begin].segment;
    stepped.push_back(&segment);
    size_t end = begin;
    while (end < alive_.size() && alive_[end].segment == &segment) ++end;
    const SearchOptions& options = segment.options;
    const int step = static_cast<int>(alive_[begin].tokens.size());
    const bool forced = step < static_cast<int>(segment.prefix.size());
    const bool last_step = step + 1 >= options.max_decoding_length;
    const int beam = segment.beam();

    auto extend = [&](size_t parent, int32_t token, float log_prob) {
      Hypothesis child{&segment, alive_[parent].tokens, alive_[parent].cumulative + log_prob};
      child.tokens.push_back(token);
      if (token == vocabulary_.eos_id || last_step) {
        const float score =
            NormalisedScore(child.cumulative, child.tokens.size(), options.length_penalty);
        segment.finished.push_back(Segment::Finished{std::move(child.tokens), score});
      } else {
        next.push_back(std::move(child));
        parents.push_back(static_cast<int32_t>(parent));
      }
    };

    for (size_t h = begin; h < end; ++h) {
      float* row = logits_.data() + h * vocab;
      if (options.repetition_penalty != 1.0f) {
        ApplyRepetitionPenalty(alive_[h].tokens, options.repetition_penalty, row);
      }
      if (segment.sampling() && !forced) {
        std::vector<float> log_probs(row, row + vocab);
        LogSoftmax(log_probs.data(), vocab, log_probs.data());
        ApplyMasks(alive_[h].tokens, options, vocabulary_, log_probs.data());
        const int32_t token = Sample(row, log_probs.data(), vocab, options, segment.generator);
        extend(h, token, log_probs[token]);
        continue;
      }
      LogSoftmax(row, vocab, row);
      if (forced) {
        extend(h, segment.prefix[step], row[segment.prefix[step]]);
        continue;
      }
      ApplyMasks(alive_[h].tokens, options, vocabulary_, row);
    }
    if (!forced && !segment.sampling()) {
      // Beam step over the segment's hypotheses: the 2K best candidates, best first.
      const size_t wanted = 2 * static_cast<size_t>(beam);
      candidates.clear();
      for (size_t h = begin; h < end; ++h) {
        heap.clear();
        TopOfRow(logits_.data() + h * vocab, vocab, alive_[h].cumulative,
                 static_cast<int64_t>(h - begin) * vocab, wanted, heap);
        candidates.insert(candidates.end(), heap.begin(), heap.end());
      }
      std::sort(candidates.begin(), candidates.end(), Better);
      if (candidates.size() > wanted) candidates.resize(wanted);
      int kept = 0;
      for (size_t rank = 0; rank < candidates.size() && kept < beam; ++rank) {
        const size_t parent = begin + static_cast<size_t>(candidates[rank].flat / vocab);
        const int32_t token = static_cast<int32_t>(candidates[rank].flat % vocab);
        const float log_prob = candidates[rank].score - alive_[parent].cumulative;
        if (token == vocabulary_.eos_id) {
          if (rank < static_cast<size_t>(beam)) extend(parent, token, log_prob);
          continue;
        }
        extend(parent, token, log_prob);
        ++kept;
      }
    }
    begin = end;
  }

  // Segments with K finished hypotheses, or none left alive, are done and leave the batch.
  absl::flat_hash_set<const Segment*> has_next;
  for (const Hypothesis& h : next) has_next.insert(h.segment);
  absl::flat_hash_set<const Segment*> done;
  for (Segment* segment : stepped) {
    if (static_cast<int>(segment->finished.size()) >= segment->beam() ||
        !has_next.contains(segment)) {
      done.insert(segment);
      // A single-hypothesis segment's last token is final now; report it unless it is </s>.
      if (segment->beam() == 1 && !segment->finished.empty() &&
          segment->finished.front().tokens.back() != vocabulary_.eos_id) {
        output.tokens.push_back({segment->id, segment->finished.front().tokens.back()});
      }
      output.finished.push_back({segment->id, segment->Result()});
    }
  }
  alive_.clear();
  std::vector<int32_t> kept_parents;
  for (size_t i = 0; i < next.size(); ++i) {
    if (done.contains(next[i].segment)) continue;
    if (next[i].segment->beam() == 1) {
      output.tokens.push_back({next[i].segment->id, next[i].tokens.back()});
    }
    alive_.push_back(std::move(next[i]));
    kept_parents.push_back(parents[i]);
  }
  for (const SearchStepOutput::Done& d : output.finished) segments_.erase(d.segment);
  return model_.Reorder(kept_parents);
}

}  // namespace kvmt
