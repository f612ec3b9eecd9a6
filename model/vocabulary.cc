#include "model/vocabulary.h"
