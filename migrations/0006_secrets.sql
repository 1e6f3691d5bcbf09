-- A tenant's named secrets (`weir secret set`), encrypted at rest with the
-- key given to `weir serve` (XChaCha20-Poly1305; the tenant and name are the
-- associated data, so a row copied under another tenant or name does not
-- decrypt). The plaintext is never stored, logged or answered.
CREATE TABLE secrets (
    tenant      text        NOT NULL,
    name        text        NOT NULL,
    nonce       bytea       NOT NULL,
    ciphertext  bytea       NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant, name)
);
