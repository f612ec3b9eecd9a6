#include "decoder/search/batch_search.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "absl/strings/str_cat.h"
#include "core/log_softmax_top_k.h"
#include "core/ops.h"
#include "core/parallel_for.h"
#include "core/profile.h"

namespace kvmt {
namespace {

constexpr float kMinusInf = -std::numeric_limits<float>::infinity();

// Sets masked entries of a row to -inf, keeping the values it replaces (when `saved` is set) so
// that they still count in the log-softmax normaliser.
class RowMask {
 public:
  RowMask(float* row, std::vector<float>* saved) : row_(row), saved_(saved) {}
  void operator()(int32_t id) {
    if (row_[id] == kMinusInf) return;
    if (saved_ != nullptr) saved_->push_back(row_[id]);
    row_[id] = kMinusInf;
  }

 private:
  float* row_;
  std::vector<float>* saved_;
};

void BlockRepeatedNgrams(const std::vector<int32_t>& tokens, int n, RowMask& mask) {
  const int length = static_cast<int>(tokens.size());
  if (n <= 0 || length < n - 1) return;
  // The last n-1 tokens; every earlier occurrence bans the token that followed it.
  for (int start = 0; start + n - 1 < length; ++start) {
    bool match = true;
    for (int j = 0; j < n - 1 && match; ++j)
      match = tokens[start + j] == tokens[length - n + 1 + j];
    if (match) mask(tokens[start + n - 1]);
  }
}

// Masks 3-5 of docs/DECODING.md on a row.
void ApplyMasks(const std::vector<int32_t>& tokens, const SearchOptions& options,
                const SearchVocabulary& vocabulary, RowMask mask) {
  for (int32_t id : vocabulary.suppressed_ids) mask(id);
  if (static_cast<int>(tokens.size()) < options.min_decoding_length) mask(vocabulary.eos_id);
  BlockRepeatedNgrams(tokens, options.no_repeat_ngram_size, mask);
}

float NormalisedScore(float cumulative, size_t length, float length_penalty) {
  if (length_penalty == 0.0f || length == 0) return cumulative;
  return cumulative / std::pow(static_cast<float>(length), length_penalty);
}

}  // namespace

struct BatchSearch::Segment {
  uint64_t id = 0;
  SearchOptions options;
  std::vector<int32_t> prefix;
  std::mt19937_64 generator;
  int32_t eos_id = 0;
  bool has_next = false;  // Per step: some hypothesis continues.
  struct Finished {
    std::vector<int32_t> tokens;
    float score = 0.0f;
  };
  std::vector<Finished> finished;

  int beam() const { return std::max(1, options.beam_size); }
  bool sampling() const { return beam() == 1 && options.sampling_topk != 1; }
  bool done() const { return static_cast<int>(finished.size()) >= beam() || !has_next; }

  SearchResult Result() {
    std::stable_sort(finished.begin(), finished.end(),
                     [](const Finished& a, const Finished& b) { return a.score > b.score; });
    SearchResult result;
    const size_t count = std::min<size_t>(finished.size(), options.num_hypotheses);
    for (size_t i = 0; i < count; ++i) {
      SearchHypothesis hypothesis{std::move(finished[i].tokens), finished[i].score};
      if (!options.return_end_token && !hypothesis.ids.empty() && hypothesis.ids.back() == eos_id) {
        hypothesis.ids.pop_back();
      }
      result.hypotheses.push_back(std::move(hypothesis));
    }
    return result;
  }
};

namespace {

// Best first; ties: lower flattened index first (docs/DECODING.md).
template <typename C>
bool Better(const C& a, const C& b) {
  return a.score > b.score || (a.score == b.score && a.flat < b.flat);
}

int32_t Sample(const float* logits, const float* log_probs, int64_t vocab,
               const SearchOptions& options, std::mt19937_64& generator,
               std::vector<std::pair<float, int32_t>>& allowed) {
  allowed.clear();
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

BatchSearch::BatchSearch(StepModel& model, SearchVocabulary vocabulary)
    : model_(model), vocabulary_(std::move(vocabulary)), seen_(vocabulary_.size, 0) {}

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
  if (alive_count_ == alive_.size()) alive_.emplace_back();
  Hypothesis& h = alive_[alive_count_++];
  h.segment = state.get();
  h.tokens.clear();
  h.tokens.reserve(options.max_decoding_length + 1);
  h.cumulative = 0.0f;
  segments_.emplace(segment, std::move(state));
  return absl::OkStatus();
}

absl::Status BatchSearch::Cancel(uint64_t segment) {
  auto it = segments_.find(segment);
  if (it == segments_.end()) {
    return absl::NotFoundError(absl::StrCat("segment ", segment, " is not decoding"));
  }
  parents_.clear();
  size_t kept = 0;
  for (size_t i = 0; i < alive_count_; ++i) {
    if (alive_[i].segment == it->second.get()) continue;
    std::swap(alive_[kept++], alive_[i]);
    parents_.push_back(static_cast<int32_t>(i));
  }
  alive_count_ = kept;
  segments_.erase(it);
  return model_.Reorder(parents_);
}

BatchSearch::Hypothesis& BatchSearch::NextSlot(Segment* segment) {
  if (next_count_ == next_.size()) next_.emplace_back();
  Hypothesis& slot = next_[next_count_++];
  slot.segment = segment;
  slot.tokens.reserve(segment->options.max_decoding_length + 1);
  return slot;
}

void BatchSearch::ApplyRepetitionPenalty(const std::vector<int32_t>& tokens, float penalty,
                                         float* logits) {
  for (int32_t id : tokens) {
    if (seen_[id]) continue;
    seen_[id] = 1;
    logits[id] = logits[id] < 0 ? logits[id] * penalty : logits[id] / penalty;
  }
  for (int32_t id : tokens) seen_[id] = 0;
}

// Every row that takes the argmax or beam path, in parallel: masks, then in one pass over the
// row its log-softmax normaliser and its 2K best logits (a forced row needs the normaliser only).
// Sampling rows are left to StepSegment.
void BatchSearch::ScoreRows(absl::Span<float> logits) {
  const int64_t vocab = vocabulary_.size;
  if (row_normaliser_.size() < alive_count_) row_normaliser_.resize(alive_count_);
  if (row_found_.size() < alive_count_) row_found_.resize(alive_count_);
  size_t wanted = 0;
  for (size_t h = 0; h < alive_count_; ++h) {
    wanted = std::max<size_t>(wanted, 2 * static_cast<size_t>(alive_[h].segment->beam()));
  }
  row_top_stride_ = wanted;
  if (row_top_.size() < alive_count_ * wanted) row_top_.resize(alive_count_ * wanted);
  for (size_t h = 0; h < alive_count_; ++h) {
    const SearchOptions& options = alive_[h].segment->options;
    if (options.repetition_penalty != 1.0f) {
      ApplyRepetitionPenalty(alive_[h].tokens, options.repetition_penalty,
                             logits.data() + h * vocab);
    }
  }
  ParallelFor(static_cast<int64_t>(alive_count_), vocab, [&](int64_t h) {
    const Hypothesis& hypothesis = alive_[h];
    const Segment& segment = *hypothesis.segment;
    const bool forced = hypothesis.tokens.size() < segment.prefix.size();
    if (segment.sampling() && !forced) return;
    float* row = logits.data() + h * vocab;
    thread_local std::vector<float> masked;
    masked.clear();
    if (!forced) ApplyMasks(hypothesis.tokens, segment.options, vocabulary_, RowMask(row, &masked));
    const int k = forced ? 0 : 2 * segment.beam();
    row_normaliser_[h] =
        LogSumExpTopK(row, vocab, masked, k, row_top_.data() + h * row_top_stride_, &row_found_[h]);
  });
}

// Steps the hypotheses [begin, end) of one segment: children go to next_ (with their parent in
// parents_), finished hypotheses to the segment.
void BatchSearch::StepSegment(size_t begin, size_t end, absl::Span<float> logits) {
  const int64_t vocab = vocabulary_.size;
  Segment& segment = *alive_[begin].segment;
  const SearchOptions& options = segment.options;
  const int step = static_cast<int>(alive_[begin].tokens.size());
  const bool forced = step < static_cast<int>(segment.prefix.size());
  const bool last_step = step + 1 >= options.max_decoding_length;
  const int beam = segment.beam();

  auto extend = [&](size_t parent, int32_t token, float log_prob) {
    const float cumulative = alive_[parent].cumulative + log_prob;
    if (token == vocabulary_.eos_id || last_step) {
      std::vector<int32_t> tokens = alive_[parent].tokens;
      tokens.push_back(token);
      const float score = NormalisedScore(cumulative, tokens.size(), options.length_penalty);
      segment.finished.push_back(Segment::Finished{std::move(tokens), score});
      return;
    }
    Hypothesis& child = NextSlot(&segment);
    child.tokens.assign(alive_[parent].tokens.begin(), alive_[parent].tokens.end());
    child.tokens.push_back(token);
    child.cumulative = cumulative;
    parents_.push_back(static_cast<int32_t>(parent));
    segment.has_next = true;
  };

  if (forced) {
    for (size_t h = begin; h < end; ++h) {
      const int32_t token = segment.prefix[step];
      extend(h, token, logits[h * vocab + token] - row_normaliser_[h]);
    }
    return;
  }
  if (segment.sampling()) {
    for (size_t h = begin; h < end; ++h) {
      float* row = logits.data() + h * vocab;
      sample_log_probs_.assign(row, row + vocab);
      LogSoftmax(sample_log_probs_.data(), vocab, sample_log_probs_.data());
      ApplyMasks(alive_[h].tokens, options, vocabulary_,
                 RowMask(sample_log_probs_.data(), nullptr));
      const int32_t token =
          Sample(row, sample_log_probs_.data(), vocab, options, segment.generator, sample_allowed_);
      extend(h, token, sample_log_probs_[token]);
    }
    return;
  }

  // Beam step over the segment's hypotheses: the 2K best candidates, best first. Each row's 2K
  // best logits are its 2K best log-probabilities, so the segment's 2K best are among them.
  const size_t wanted = 2 * static_cast<size_t>(beam);
  candidates_.clear();
  for (size_t h = begin; h < end; ++h) {
    const TopKEntry* top = row_top_.data() + h * row_top_stride_;
    for (int i = 0; i < row_found_[h]; ++i) {
      const float log_prob = top[i].value - row_normaliser_[h];
      candidates_.push_back(Candidate{alive_[h].cumulative + log_prob,
                                      static_cast<int64_t>(h - begin) * vocab + top[i].index});
    }
  }
  std::sort(candidates_.begin(), candidates_.end(), Better<Candidate>);
  if (candidates_.size() > wanted) candidates_.resize(wanted);
  int kept = 0;
  for (size_t rank = 0; rank < candidates_.size() && kept < beam; ++rank) {
    const size_t parent = begin + static_cast<size_t>(candidates_[rank].flat / vocab);
    const int32_t token = static_cast<int32_t>(candidates_[rank].flat % vocab);
    const float log_prob = candidates_[rank].score - alive_[parent].cumulative;
    if (token == vocabulary_.eos_id) {
      if (rank < static_cast<size_t>(beam)) extend(parent, token, log_prob);
      continue;
    }
    extend(parent, token, log_prob);
    ++kept;
  }
}

absl::Status BatchSearch::Step(SearchStepOutput& output) {
  output.tokens.clear();
  output.finished.clear();
  if (alive_count_ == 0) return absl::OkStatus();

  inputs_.clear();
  for (size_t i = 0; i < alive_count_; ++i) {
    const Hypothesis& h = alive_[i];
    inputs_.push_back(h.tokens.empty() ? vocabulary_.start_id : h.tokens.back());
  }
  absl::StatusOr<absl::Span<float>> logits = model_.Logits(inputs_);
  if (!logits.ok()) return logits.status();
  const ScopedStageTimer timer(Stage::kSearch);

  ScoreRows(*logits);
  next_count_ = 0;
  parents_.clear();
  stepped_.clear();
  for (size_t begin = 0; begin < alive_count_;) {
    Segment* segment = alive_[begin].segment;
    size_t end = begin;
    while (end < alive_count_ && alive_[end].segment == segment) ++end;
    segment->has_next = false;
    stepped_.push_back(segment);
    StepSegment(begin, end, *logits);
    begin = end;
  }

  // Segments with K finished hypotheses, or none left alive, are done and leave the batch;
  // the children of the others become the alive hypotheses.
  for (Segment* segment : stepped_) {
    if (!segment->done()) continue;
    // A single-hypothesis segment's last token is final now; report it unless it is </s>.
    if (segment->beam() == 1 && !segment->finished.empty() &&
        segment->finished.front().tokens.back() != vocabulary_.eos_id) {
      output.tokens.push_back({segment->id, segment->finished.front().tokens.back()});
    }
    output.finished.push_back({segment->id, segment->Result()});
  }
  size_t kept = 0;
  for (size_t i = 0; i < next_count_; ++i) {
    Segment* segment = next_[i].segment;
    if (segment->done()) continue;
    if (segment->beam() == 1) output.tokens.push_back({segment->id, next_[i].tokens.back()});
    std::swap(next_[kept], next_[i]);
    parents_[kept++] = parents_[i];
  }
  parents_.resize(kept);
  next_count_ = kept;
  alive_.swap(next_);
  std::swap(alive_count_, next_count_);
  for (const SearchStepOutput::Done& d : output.finished) segments_.erase(d.segment);
  return model_.Reorder(parents_);
}

}  // namespace kvmt
