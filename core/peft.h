/*
 * core/peft.h - reading a PEFT LoRA adapter (adapter_config.json +
 * adapter_model.safetensors) and checking it against its base model.
 *
 * Conventions (huggingface/peft): adapter tensors are named
 *   base_model.model.<module>.lora_A.weight   [r, in_features]
 *   base_model.model.<module>.lora_B.weight   [out_features, r]
 * and for embeddings
 *   base_model.model.<module>.lora_embedding_A [r, num_embeddings]
 *   base_model.model.<module>.lora_embedding_B [embedding_dim, r]
 * where <module>.weight is a tensor of the base ([out, in] for Linear,
 * [num_embeddings, embedding_dim] for Embedding). Scale per module:
 * alpha / r, or alpha / sqrt(r) with use_rslora; rank_pattern and
 * alpha_pattern override r and alpha for modules whose name matches a key
 * (the key equals the module name or is a suffix after a '.').
 */
#ifndef SLUICE_CORE_PEFT_H
#define SLUICE_CORE_PEFT_H

#include "internal.h"
#include "safetensors.h"

typedef struct {
	char *module;  /* e.g. "model.layers.0.self_attn.q_proj" */
	int embedding; /* 1 for lora_embedding_A/B */
	unsigned r;
	double alpha;
	double scale;          /* alpha/r or alpha/sqrt(r) */
	uint64_t in_features;  /* Linear: in; Embedding: num_embeddings */
	uint64_t out_features; /* Linear: out; Embedding: embedding_dim */
	char *a_name, *b_name; /* adapter tensor names */
} sluice_peft_module;

typedef struct {
	char *peft_type;  /* "LORA" */
	char *base_model; /* base_model_name_or_path, or NULL */
	unsigned r;
	double alpha;
	int use_rslora;
	size_t nmodules;
	sluice_peft_module *modules; /* sorted by module name */
} sluice_peft_adapter;

/*
 * Parse adapter_config.json and check the adapter's tensors (already parsed
 * header of adapter_model.safetensors) against the base model's headers
 * (one per shard). Refused with SLUICE_EINVALID and a message naming the
 * file, field or tensor: a peft_type other than LORA; use_dora true (DoRA's
 * magnitude vectors would be ignored); fan_in_fan_out true (Conv1D layout,
 * not llama's Linear); a non-empty modules_to_save (full weight copies
 * hidden in an adapter); layers_to_transform / layers_pattern (not
 * supported yet); a tensor that is not a lora_A/lora_B/lora_embedding pair;
 * a pair with one half missing; a module absent from the base; shapes that
 * do not fit the base; a rank that differs from the config (after
 * rank_pattern); a target_modules entry matching no adapted module, or an
 * adapted module that target_modules does not name. Also refused when set:
 * bias other than "none", lora_bias, use_qalora, layer_replication,
 * trainable_token_indices, target_parameters, alora_invocation_tokens,
 * arrow_config. Other fields are ignored (PEFT adds some in every release);
 * peft.c's opening comment says how names and patterns are matched.
 * config_name and adapter_name name the files in messages (NULL: the
 * default names). Returns 0, SLUICE_EINVALID or SLUICE_ENOMEM. On failure
 * *out is left zeroed; on success release it with sluice_peft__dispose.
 * Names in *out are copies: the headers may be disposed afterwards.
 */
int sluice_peft__load(sluice_ctx *ctx, sluice_peft_adapter *out, const char *config_json,
                      size_t config_len, const char *config_name, const sluice_st_header *adapter,
                      const char *adapter_name, const sluice_st_header *const *base, size_t nbase);

/*
 * Parse and check the config alone (what the fuzz target drives): fills
 * peft_type, base_model, r, alpha, use_rslora; nmodules is 0. Same returns
 * and refusals as the config part of sluice_peft__load.
 */
int sluice_peft__parse_config(sluice_ctx *ctx, sluice_peft_adapter *out, const char *config_json,
                              size_t config_len, const char *config_name);

/* Release what *a holds and zero it; accepts NULL and a zeroed struct. */
void sluice_peft__dispose(sluice_peft_adapter *a);

#endif
