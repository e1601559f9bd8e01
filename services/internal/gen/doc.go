// Package gen holds the pieces the services' deterministic request
// generators and generated data sets are built from, so that every service
// draws them the same way:
//
//   - [Alias] samples a discrete distribution in constant time (Walker's
//     alias method in Vose's construction), the way item popularity and
//     word frequencies are drawn;
//   - [ZipfWeights] gives the weights of Zipf's law, the shape of word
//     frequencies and item popularity;
//   - [Vocabulary] makes pronounceable pseudo-words, shortest first, for
//     the text corpora of bm25 and bayes, and [LogNormalLen] draws their
//     document lengths;
//   - [NewRand] seeds a PCG generator with one stream per use of a seed,
//     so that the vocabulary, the corpus and the requests of a service are
//     drawn independently of one another.
//
// Everything here is a pure function of its inputs and the caller's
// *rand.Rand, so a generator that uses it stays reproducible from its
// seed. Changing any of it changes the requests, corpora and replies of
// several services at once; the fingerprint tests in package services and
// in bm25 and bayes pin them.
//
//	pop := gen.NewAlias(gen.ZipfWeights(10_000, 1.1))
//	rng := gen.NewRand(seed, 0x70c)
//	item := pop.Sample(rng) // 0 is the most popular
//
// Routing keys are hashed with package mix.
package gen
