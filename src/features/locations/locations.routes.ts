import type { Deps } from '../../container.js';
import { crudRoutes } from '../../http/crud-routes.js';
import { Location, LocationInput, LocationListQuery, LocationPatch } from './locations.schema.js';
import { createLocation, deleteLocation, getLocation, listLocations, updateLocation } from './locations.service.js';

export const locationsRoutes = (deps: Deps) =>
  crudRoutes(deps, {
    path: '/v1/locations',
    noun: 'location',
    listSummary: 'List locations',
    schemas: { resource: Location, input: LocationInput, patch: LocationPatch, query: LocationListQuery },
    service: { create: createLocation, list: listLocations, get: getLocation, update: updateLocation, remove: deleteLocation },
  });
