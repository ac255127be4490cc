# Builds the one stage executable (`alerting <stage>`) and a slim runtime image with librdkafka.
# docker-compose.yml runs every stage from this image with a different command.
FROM debian:bookworm-slim AS build
RUN apt-get update && apt-get install -y --no-install-recommends nodejs npm ca-certificates \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY package.json package-lock.json ./
COPY patches ./patches
RUN npm ci --no-audit --no-fund
COPY tsconfig.json bunfig.toml ./
COPY src ./src
COPY scripts/build.ts ./scripts/build.ts
RUN node_modules/.bin/bun scripts/build.ts

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends librdkafka1 ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 alerting
COPY --from=build /src/dist/alerting /usr/local/bin/alerting
COPY migrations /migrations
USER alerting
ENV HTTP_HOST=0.0.0.0
ENTRYPOINT ["/usr/local/bin/alerting"]
