/**
 * Jest runs the infra tests in-process: ts-jest compiles TypeScript on the fly and every
 * test synthesizes with cdktf's Testing helpers (no CLI, no provider download).
 * @type {import('jest').Config}
 */
module.exports = {
  testEnvironment: "node",
  roots: ["<rootDir>/__tests__"],
  testMatch: ["**/__tests__/**/*.test.ts"],
  transform: {
    // tsconfig sets isolatedModules, so ts-jest transpiles file by file (fast);
    // type-checking is the lint stage's job (tsc --noEmit).
    "^.+\\.ts$": ["ts-jest", { tsconfig: "tsconfig.json" }],
  },
  setupFilesAfterEnv: ["<rootDir>/__tests__/jest.setup.ts"],
  moduleFileExtensions: ["ts", "js", "json"],
  testTimeout: 60000,
};
