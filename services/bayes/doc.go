// Package bayes is the bayes microservice of E3: a multinomial naive Bayes
// classifier of messages (spam filtering by default) that picks the
// maximum a posteriori class.
//
// # What it does
//
// At New the service trains a model and keeps it read-only, so it is
// stateless. For a message m of words w1..wn it returns the class
//
//	argmax over c of  ln P(c) + sum over i of ln P(wi|c)
//	P(c)   = training messages of class c / training messages
//	P(w|c) = (occurrences of w in class c + alpha) / (words of class c + alpha*|V|)
//
// (Laplace smoothing with alpha, |V| the words seen in training). Words not
// in the vocabulary carry no evidence and are skipped; a message with no
// known word is classified by the priors alone. Ties go to the lower class
// id. All log probabilities are computed at training and stored word-major
// (the classes of one word side by side), so a word costs one map lookup on
// the request's bytes, which does not allocate, and one add per class. The
// reply also gives the margin to the runner-up and the posterior of the
// winner normalised over all classes (log-sum-exp, shifted by the maximum
// so nothing overflows). A request allocates nothing.
//
// # Training corpus
//
// By default the model is trained on a corpus generated from a fixed seed:
// 4,000 messages whose lengths are log-normal around a median of 60 words
// (sigma 0.5), over 10,000 pronounceable pseudo-words, in two classes, ham
// (prior 2/3) and spam (1/3). Each class draws nine tenths of its words
// from one Zipf law (exponent 1) shared by all classes, the everyday words,
// and one tenth from a Zipf law over a class-specific ranking of the
// vocabulary, its topic words. Classes thus overlap heavily and differ in a
// tail, as real ham and spam do; on generated messages of 512 bytes (about
// 110 words) the model is right 99% of the time, on 128-byte ones (about 19
// words) 85%. With more classes, class c has prior weight classes-c and the
// classes are named c0, c1, .... Training takes about 25 ms; instances of
// one configuration in one process share the model. The seed is fixed
// rather than the instance's so that all replicas and shards agree.
//
// A real training set can be given with training_file: one message per
// line, the class name, a tab, the text; class ids follow the order in
// which class names first appear; blank lines are skipped.
//
// Words are split the same way in training and in requests: maximal runs
// of ASCII letters, digits and bytes >= 0x80, ASCII lowercased, at most 64
// bytes (longer runs are ignored).
//
// # Request
//
// A [service.Event]. The service reads only Text, the message; Op, Key,
// Item, Value, Time, Token and Features are ignored. A request that does
// not decode is rejected with an error wrapping [service.ErrMalformed] and
// is not passed on; any text decodes.
//
// # Reply
//
// Little endian, 20 bytes (decoded by [ParseReply] into a [Result]):
//
//	0  class          u16  the MAP class id
//	2  words          u16  words of the message found in the vocabulary
//	4  margin         f64  ln P(class|m) - ln P(runner-up|m), >= 0
//	12 log posterior  f64  ln P(class|m), in [-ln classes, 0]
//
// # Downstream
//
// The request event is emitted unchanged with the key it was routed by.
//
// # Configuration
//
//	alpha          Laplace smoothing, default 1, in (0, 100]
//	classes        generated classes, default 2 (ham, spam), at most 64
//	vocab          generated vocabulary, default 10000
//	train_docs     generated training messages, default 4000
//	doc_len        median generated message length in words, default 60
//	zipf_s         Zipf exponent, default 1.0
//	corpus_seed    seed of the generated corpus
//	training_file  train on this file (class TAB text per line) instead
//
// # Requests for tests and benchmarks
//
// [NewGenerator] draws messages from the language of the default training
// corpus: OpObserve events whose Key is a sender id among 100,000, whose
// Item is the class the message was drawn from (a label tests check
// accuracy against; the service ignores it), and whose Text is words of
// that class filling the request to the requested size (512 bytes by
// default). The routing key is a hash of the sender id.
package bayes
