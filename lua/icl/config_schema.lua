--- The config schema: one table per section, every key of the published tree plus icl's own.
-- docs/config.md lists the same keys with their meaning; config_spec checks the two agree.
--
-- A field is { type = "int"|"number"|"bool"|"string"|"map"|"list"|"max_length", default = v,
-- required = true, choices = {...}, also = {...} (extra string values a number field accepts),
-- min = , max = , fields = {...} + order = {...} (maps), of = field (lists), ignored = "why" (an
-- HF key accepted for compatibility that icl does not act on), doc = "meaning", src = "file" }.
local S = {}

local function f(t) return t end

S.TASKS = {"linear_regression", "sparse_linear_regression", "noisy_linear_regression", "quadratic_regression",
           "conjunction", "disjunction", "sparse_disjunction", "cnf", "dnf", "int_halfspace", "majority", "parity",
           "sparse_parity", "sparse_thres"}
S.GAUSSIAN_TASKS = {linear_regression = true, sparse_linear_regression = true, noisy_linear_regression = true,
                    quadratic_regression = true}
S.PE_TYPES = {"rope", "nope", "alibi", "fire", "yarn", "dynamic-yarn", "linear", "dynamic", "none"}

local function map(order, fields, extra)
  local m = {type = "map", order = order, fields = fields}
  for k, v in pairs(extra or {}) do m[k] = v end
  return m
end

-- ---- model --------------------------------------------------------------------------------------

S.model_common = {
  type = f {type = "string", choices = {"decoder", "ssm"}, doc = "backbone kind; defaults from family (decoder for Llama2/GPT2, ssm for Mamba) and must agree with it", src = "base_model/*"},
  family = f {type = "string", choices = {"Llama2", "Mamba", "GPT2"}, required = true, doc = "backbone family; GPT2 loads but cannot be built (the study reports Llama only)", src = "base_model/*"},
  max_length = f {type = "max_length", doc = "one model is trained per entry; for Llama it is max_position_embeddings (tokens); Mamba: [\"inf\"]; default [2 x points.end]", src = "base_model/*"},
}

S.model_llama = {
  hidden_size = f {type = "int", min = 1, required = true, doc = "d_model", src = "base_model/llama/*"},
  num_hidden_layers = f {type = "int", min = 1, required = true, doc = "decoder blocks", src = "base_model/llama/*"},
  num_attention_heads = f {type = "int", min = 1, required = true, doc = "query heads; must divide hidden_size", src = "base_model/llama/*"},
  hidden_act = f {type = "string", choices = {"silu"}, default = "silu", doc = "MLP gate activation (SwiGLU)", src = "base_model/llama/*"},
  rope_theta = f {type = "number", min = 0, default = 10000.0, doc = "RoPE base", src = "base_model/llama/*"},
  rope_scaling = map({"type", "factor"}, {
    type = f {type = "string", choices = {"none", "linear", "dynamic"}, default = "none", doc = "HF-native RoPE scaling of the base model (llama.yaml sweeps it); a patch's rope_scaling.type takes precedence", src = "base_model/llama/llama.yaml"},
    factor = f {type = "number", min = 0, also = {"auto"}, default = "auto", doc = "scaling factor; auto = the patch's factor rule"},
  }, {doc = "HF LlamaConfig rope_scaling", src = "base_model/llama/llama.yaml"}),
  intermediate_size = f {type = "int", min = 1, doc = "SwiGLU width; default 4 x hidden_size (the published code)"},
  num_key_value_heads = f {type = "int", min = 1, doc = "KV heads (GQA); default num_attention_heads"},
  rms_norm_eps = f {type = "number", min = 0, default = 1e-6, doc = "RMSNorm epsilon"},
  initializer_range = f {type = "number", min = 0, default = 0.02, doc = "std of the normal init of Linear weights"},
  vocab_size = f {type = "int", min = 0, default = 32000, doc = "rows of HF's unused token-embedding table; only counted in parameter reports (24.98M)"},
  attention_bias = f {type = "bool", default = false, doc = "bias in q/k/v/o projections"},
  mlp_bias = f {type = "bool", default = false, doc = "bias in the MLP projections"},
}

S.model_mamba = {
  hidden_size = f {type = "int", min = 1, required = true, doc = "d_model", src = "base_model/mamba/*"},
  state_size = f {type = "int", min = 1, default = 16, doc = "SSM state size N", src = "base_model/mamba/*"},
  num_hidden_layers = f {type = "int", min = 1, required = true, doc = "Mamba blocks", src = "base_model/mamba/*"},
  expand = f {type = "int", min = 1, default = 2, doc = "inner width = expand x hidden_size"},
  conv_kernel = f {type = "int", min = 1, default = 4, doc = "causal depthwise conv width"},
  time_step_rank = f {type = "int", min = 1, also = {"auto"}, default = "auto", doc = "dt projection rank; auto = ceil(hidden_size / 16)"},
  layer_norm_epsilon = f {type = "number", min = 0, default = 1e-5, doc = "RMSNorm epsilon"},
  use_bias = f {type = "bool", default = false, doc = "bias in in/out projections"},
  use_conv_bias = f {type = "bool", default = true, doc = "bias in the conv"},
  vocab_size = f {type = "int", min = 0, default = 50280, doc = "rows of HF's unused embedding table (parameter reports only)"},
}

S.model_gpt2 = {
  n_embed = f {type = "int", min = 1, required = true, doc = "d_model (the published key; HF GPT2Config reads n_embd)", src = "base_model/gpt/*"},
  n_layer = f {type = "int", min = 1, required = true, doc = "blocks", src = "base_model/gpt/*"},
  n_head = f {type = "int", min = 1, required = true, doc = "heads", src = "base_model/gpt/*"},
}

S.family_fields = {Llama2 = S.model_llama, Mamba = S.model_mamba, GPT2 = S.model_gpt2}
S.family_order = {
  Llama2 = {"type", "family", "max_length", "hidden_size", "num_hidden_layers", "num_attention_heads", "hidden_act",
            "rope_theta", "rope_scaling", "intermediate_size", "num_key_value_heads", "rms_norm_eps",
            "initializer_range", "vocab_size", "attention_bias", "mlp_bias"},
  Mamba = {"type", "family", "max_length", "hidden_size", "state_size", "num_hidden_layers", "expand", "conv_kernel",
           "time_step_rank", "layer_norm_epsilon", "use_bias", "use_conv_bias", "vocab_size"},
  GPT2 = {"type", "family", "max_length", "n_embed", "n_layer", "n_head"},
}

-- ---- patch --------------------------------------------------------------------------------------

S.patch = map({"name", "rope_scaling", "dynamic_yarn_mode", "fire", "alibi"}, {
  name = f {type = "string", doc = "label of the patch (free text; the published dynamic-YaRN patch says 'yarn'); default rope_scaling.type", src = "patch/*"},
  rope_scaling = map({"type", "factor"}, {
    type = f {type = "string", choices = S.PE_TYPES, doc = "position encoding: rope (plain RoPE), nope, alibi, fire, yarn, dynamic-yarn, linear (PI), dynamic (NTK), none (Mamba: no PE); default rope for Llama2, none for Mamba", src = "patch/*"},
    factor = f {type = "number", min = 0, also = {"auto"}, default = "auto", doc = "RoPE scaling factor (yarn, dynamic-yarn, linear, dynamic); auto = the published rule max_length / points.end / 2 x 8 (8 for the paper preset)"},
  }, {doc = "the position-encoding patch", src = "patch/*"}),
  dynamic_yarn_mode = f {type = "string", choices = {"paper", "code"}, default = "paper", doc = "dynamic YaRN: paper = rescale once the sequence exceeds the training length (s = max(1, L/L_train)); code = the published code, which rescales only past factor x max_length"},
  fire = map({"mlp_width", "bias_position", "init_L", "init_c"}, {
    mlp_width = f {type = "int", min = 1, also = {"max_length"}, default = 32, doc = "FIRE MLP width; 32 as the paper says; 'max_length' reproduces the published code, which passed max_position_embeddings"},
    bias_position = f {type = "string", choices = {"after_scale", "before_scale"}, default = "after_scale", doc = "add the FIRE bias after the 1/sqrt(head_dim) scaling (after_scale) or before it"},
    init_L = f {type = "number", min = 0, default = 512.0, doc = "initial FIRE threshold L"},
    init_c = f {type = "number", default = 0.1, doc = "initial FIRE c in psi(x) = log(c x + 1)"},
  }, {doc = "FIRE options"}),
  alibi = map({"bias_max"}, {
    bias_max = f {type = "number", min = 0, default = 8.0, doc = "ALiBi slopes 2^(-bias_max (h+1)/H) (MPT's alibi_bias_max)"},
  }, {doc = "ALiBi options"}),
}, {doc = "position-encoding patch", src = "patch/*"})

-- ---- task ---------------------------------------------------------------------------------------

local function schedule(what)
  return map({"start", "end", "increment", "interval"}, {
    start = f {type = "int", min = 1, required = true, doc = what .. " at step 0", src = "hyperparams/curriculum/*"},
    ["end"] = f {type = "int", min = 1, required = true, doc = "largest " .. what, src = "hyperparams/curriculum/*"},
    increment = f {type = "int", min = 0, required = true, doc = "added every interval steps", src = "hyperparams/curriculum/*"},
    interval = f {type = "int", min = 1, required = true, doc = "steps between increments", src = "hyperparams/curriculum/*"},
  }, {doc = what .. " schedule: min(start + increment x floor(step / interval), end)", src = "hyperparams/curriculum/*"})
end

S.curriculum = map({"dims", "points"}, {
  dims = schedule("active input dims"),
  points = schedule("points per prompt"),
}, {required = true, doc = "curriculum", src = "hyperparams/curriculum/*"})

S.task = map({"name", "data", "curriculum", "n_dims", "sparsity", "noise_std", "renormalize_ys", "scale", "quirks"}, {
  name = f {type = "string", choices = S.TASKS, required = true, doc = "function class", src = "tasks/*"},
  data = f {type = "string", choices = {"gaussian", "boolean"}, doc = "input sampler; defaults from name and must agree with it", src = "tasks/*"},
  curriculum = S.curriculum,
  n_dims = f {type = "int", min = 1, doc = "model input dimension D; default curriculum dims.end; must be >= dims.end"},
  sparsity = f {type = "int", min = 1, default = 3, doc = "non-zero weights (sparse_linear_regression)"},
  noise_std = f {type = "number", min = 0, default = 1.0, doc = "label noise sigma (noisy_linear_regression; 1 as in Garg et al.'s noisyLR evaluation)"},
  renormalize_ys = f {type = "bool", default = false, doc = "noisy_linear_regression: rescale y to std sqrt(D)"},
  scale = f {type = "number", default = 1.0, doc = "regression output scale"},
  quirks = map({"independent_label_function", "sparse_support_all_dims", "boolean_truncation"}, {
    independent_label_function = f {type = "bool", default = false, doc = "true: evaluation draws x and y from two independent functions, as the published eval code did (tasks.md 9.5a)"},
    sparse_support_all_dims = f {type = "bool", default = false, doc = "true: sparse regression support drawn over all D dims, as the published code did; false: within the active dims (Garg et al.)"},
    boolean_truncation = f {type = "bool", default = false, doc = "true: zero Boolean inputs beyond the dims curriculum too; false: Boolean samplers ignore it, as in the published code"},
  }, {doc = "switches for the published code's quirks"}),
}, {required = true, doc = "task", src = "tasks/*"})

-- ---- training (HF TrainingArguments names) ------------------------------------------------------

local TA = "hyperparams/training_args.yaml"
S.training = map({"seed", "device", "faithful_code", "max_steps", "per_device_train_batch_size",
                  "per_device_eval_batch_size", "gradient_accumulation_steps", "learning_rate", "lr_scheduler_type",
                  "warmup_ratio", "warmup_steps", "weight_decay", "adam_beta1", "adam_beta2", "adam_epsilon",
                  "max_grad_norm", "logging_steps", "evaluation_strategy", "eval_steps", "save_strategy",
                  "save_steps", "save_total_limit", "metric_for_best_model", "eval_gradient_accumulation_steps"}, {
  seed = f {type = "int", min = 0, default = 1, doc = "training seed (data, init); the published code set none"},
  device = f {type = "string", choices = {"auto", "cpu", "cuda"}, default = "auto", doc = "auto = cuda when available, else cpu"},
  faithful_code = f {type = "bool", default = false, doc = "true: what the published code ran (AdamW weight decay 0.01, eps 1e-8, no clipping); false: the paper and the file (weight_decay, adam_epsilon, max_grad_norm applied)"},
  max_steps = f {type = "int", min = 1, default = 50000, doc = "optimiser steps", src = TA},
  per_device_train_batch_size = f {type = "int", min = 1, default = 64, doc = "prompts per step", src = TA},
  per_device_eval_batch_size = f {type = "int", min = 1, default = 64, doc = "prompts per evaluation batch during training", src = TA},
  gradient_accumulation_steps = f {type = "int", min = 1, default = 1, doc = "micro-batches accumulated per optimiser step", src = TA},
  learning_rate = f {type = "number", min = 0, default = 3e-4, doc = "peak AdamW learning rate", src = TA},
  lr_scheduler_type = f {type = "string", choices = {"linear", "constant"}, default = "linear", doc = "linear warm-up then linear decay to 0 at max_steps (HF get_scheduler('linear')), or constant (HF 'constant': flat from the first step, warm-up ignored)"},
  warmup_ratio = f {type = "number", min = 0, max = 1, default = 0.0, doc = "warm-up steps = ceil(warmup_ratio x max_steps) unless warmup_steps > 0", src = TA},
  warmup_steps = f {type = "int", min = 0, default = 0, doc = "warm-up steps; > 0 overrides warmup_ratio (HF rule)"},
  weight_decay = f {type = "number", min = 0, default = 0.0, doc = "AdamW decoupled weight decay (ignored when faithful_code: 0.01)", src = TA},
  adam_beta1 = f {type = "number", min = 0, max = 1, default = 0.9, doc = "AdamW beta1", src = TA},
  adam_beta2 = f {type = "number", min = 0, max = 1, default = 0.999, doc = "AdamW beta2", src = TA},
  adam_epsilon = f {type = "number", min = 0, default = 1e-8, doc = "AdamW epsilon (ignored when faithful_code: 1e-8)", src = TA},
  max_grad_norm = f {type = "number", min = 0, default = 1.0, doc = "global gradient-norm clip; 0 = off (ignored when faithful_code: off)", src = TA},
  logging_steps = f {type = "int", min = 1, default = 10, doc = "steps between metrics-log lines", src = TA},
  evaluation_strategy = f {type = "string", choices = {"steps", "no"}, default = "steps", doc = "steps: evaluate every eval_steps; no: only at the end", src = TA},
  eval_steps = f {type = "int", min = 1, default = 100, doc = "steps between evaluations during training", src = TA},
  save_strategy = f {type = "string", choices = {"steps", "no"}, default = "steps", doc = "steps: checkpoint every save_steps; no: only at the end", src = TA},
  save_steps = f {type = "int", min = 1, default = 500, doc = "steps between checkpoints", src = TA},
  save_total_limit = f {type = "int", min = 1, default = 1, doc = "checkpoints kept (older ones are removed)", src = TA},
  metric_for_best_model = f {type = "string", default = "loss", ignored = "icl keeps the latest checkpoint, not a best one", doc = "accepted and ignored", src = TA},
  eval_gradient_accumulation_steps = f {type = "int", min = 1, default = 1, ignored = "evaluation needs no gradients", doc = "accepted and ignored (not an HF key; the published code never read it)", src = TA},
}, {doc = "training (HF TrainingArguments names)", src = TA})

-- ---- logging, eval, sweep -----------------------------------------------------------------------

S.wandb = map({"project", "entity", "mode"}, {
  project = f {type = "string", default = "In-Context Function Learning", doc = "W&B project, kept in the run record (icl never contacts W&B)", src = "logging/wandb.yaml"},
  entity = f {type = "string", doc = "W&B entity (null in the published file)", src = "logging/wandb.yaml"},
  mode = f {type = "string", choices = {"online", "offline", "disabled"}, default = "offline", doc = "kept in the run record; icl logs locally (JSON lines) in every mode", src = "logging/wandb.yaml"},
}, {doc = "W&B settings (recorded only)", src = "logging/wandb.yaml"})

S.EVAL_SETTINGS = {"standard", "ood_length", "half_subspace", "skewed", "scale-x", "scale-y", "noisy_lr",
                   "random_quadrants", "orthogonal_train_test", "overlapping_train_test"}

S.eval = map({"n_prompts", "batch_size", "ood_factor", "bootstrap_samples", "confidence", "settings", "seed"}, {
  n_prompts = f {type = "int", min = 1, default = 1280, doc = "prompts per evaluation setting (20 x 64 in the paper)"},
  batch_size = f {type = "int", min = 1, default = 64, doc = "prompts per forward pass"},
  ood_factor = f {type = "int", min = 1, default = 8, doc = "ood_length prompts have ood_factor x points.end points"},
  bootstrap_samples = f {type = "int", min = 1, default = 1000, doc = "bootstrap resamples for the per-position band"},
  confidence = f {type = "number", min = 0, max = 1, default = 0.9, doc = "bootstrap band width (0.9 = 5th..95th percentile)"},
  settings = f {type = "list", of = f {type = "string", choices = S.EVAL_SETTINGS}, default = {"standard", "ood_length"}, doc = "evaluation settings run after training"},
  seed = f {type = "int", min = 0, default = 20240101, doc = "seed of the evaluation prompts (fixed, so every run sees the same prompts)"},
}, {doc = "evaluation"})

S.sweep = map({"program", "method", "metric", "parameters", "name", "description"}, {
  program = f {type = "string", doc = "script the sweep runs", src = "sweep/sweep.yaml"},
  method = f {type = "string", choices = {"random", "grid", "bayes"}, required = true, doc = "search method", src = "sweep/sweep.yaml"},
  metric = map({"name", "goal"}, {
    name = f {type = "string", required = true, doc = "metric to optimise", src = "sweep/sweep.yaml"},
    goal = f {type = "string", choices = {"minimize", "maximize"}, default = "minimize", doc = "direction", src = "sweep/sweep.yaml"},
  }, {doc = "objective", src = "sweep/sweep.yaml"}),
  parameters = f {type = "sweep_parameters", required = true, doc = "name -> {values = [...]} | {value = v} | {min =, max =} | {distribution =, ...}", src = "sweep/sweep.yaml"},
  name = f {type = "string", doc = "sweep name"},
  description = f {type = "string", doc = "free text"},
}, {doc = "W&B sweep file (not a run config)", src = "sweep/sweep.yaml"})

S.top_order = {"model", "patch", "task", "training", "wandb", "eval", "output_dir"}
S.output_dir = f {type = "string", default = "models", doc = "root of run directories: <output_dir>/<task>/<dims>/<date>/<uid>/"}

return S
