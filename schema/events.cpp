#include "schema/events.hpp"

namespace xtrace::schema {

std::string_view NameOf(ObservationType type) {
  switch (type) {
    case ObservationType::kSpan: return "SPAN";
    case ObservationType::kGeneration: return "GENERATION";
    case ObservationType::kEvent: return "EVENT";
    case ObservationType::kAgent: return "AGENT";
    case ObservationType::kTool: return "TOOL";
    case ObservationType::kChain: return "CHAIN";
    case ObservationType::kRetriever: return "RETRIEVER";
    case ObservationType::kEvaluator: return "EVALUATOR";
    case ObservationType::kEmbedding: return "EMBEDDING";
    case ObservationType::kGuardrail: return "GUARDRAIL";
  }
  return "SPAN";
}

std::optional<ObservationType> ParseObservationType(std::string_view name) {
  for (const ObservationType type : kObservationTypes) {
    if (NameOf(type) == name) return type;
  }
  return std::nullopt;
}

MergeRule MergeRuleOf(Source source) {
  switch (source) {
    case Source::kXtraceBatch:
    case Source::kMetricsBatch: return MergeRule::kNullKeeps;
    case Source::kLangfuse:
    case Source::kOtlpTraces:
    case Source::kOtlpMetrics: return MergeRule::kNullClears;
  }
  return MergeRule::kNullKeeps;
}

size_t PositionOf(const WalRecord& record, size_t index) {
  if (record.format_version != 1) return index;
  const auto* batch = std::get_if<EntityBatch>(&record.events);
  const bool has_trace =
      batch && !batch->events.empty() && std::holds_alternative<TraceEvent>(batch->events[0]);
  return has_trace ? index : index + 1;
}

}  // namespace xtrace::schema
