#include "model/sentencepiece_tokenizer.h"
