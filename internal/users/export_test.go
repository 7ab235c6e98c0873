package users

// PasswordDerivations is how many argon2id hashes s has computed.
func (s *Service) PasswordDerivations() int64 { return s.hasher.derived.Load() }
